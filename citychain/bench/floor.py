"""The crypto floor of a simulated run: the wall seconds to sign and verify each unique
signed object of the run once, the least any simulator doing the real signatures pays.
Used by benchmarks/sim_speed.py and benchmarks/equal_work.py (docs/benchmarking.md)."""

from __future__ import annotations

import time


def crypto_floor(run, clock=time.perf_counter) -> tuple[float, int]:
    """Seconds to sign and verify every unique envelope of ``run`` (a ``SimRun`` made with
    ``simulate(..., keep_checked=True)``: a run otherwise remembers only its recent ones)
    once, and how many there were (each is one signature made and one verified).
    ``clock``: wall time by default; ``time.thread_time`` gives the CPU seconds of the one
    thread doing it, which other programs on a shared machine do not inflate as much."""
    envelopes = run.membership.authenticated()
    keys = {i.id: i.key for i in run.genesis.identities.values()}
    publics = {name: key.public_key() for name, key in keys.items()}
    start = clock()
    for env in envelopes:
        signature = keys[env.signer].sign(env.data)
        publics[env.signer].verify(signature, env.data)
    return clock() - start, len(envelopes)
