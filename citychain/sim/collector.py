"""Python's cyclic garbage collector, quieted for the length of a simulated run.

A run allocates about a million short-lived containers (envelopes, votes, heap entries)
over a heap of long-lived ones built at set-up (genesis, keys, nodes, replicas). With the
default thresholds the collector ran some 750 times at n = 64 in the equal-work benchmark
and walked the set-up objects in each of its oldest-generation passes: 7 % of the run's
CPU (measured with ``gc.callbacks``; docs/benchmarking.md). Freezing what set-up built
takes those objects out of every pass, and a larger first threshold makes the passes
fewer; cycles made during the run are still collected. Results cannot depend on it: no
simulated outcome reads the collector (the weak caches were shown byte-identical whether
they forget everything or keep everything), so this is purely a cost of the host.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

FIRST_THRESHOLD = 10_000  # allocations between young passes (Python's default: 700)
OLDER_THRESHOLD = 10  # young passes per middle pass, and middle passes per full pass


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Freeze what exists now and raise the thresholds; both undone on the way out, so a
    process that runs many simulations (the tests, a serial sweep) is left as it was."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(FIRST_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
