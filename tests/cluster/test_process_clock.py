"""Adversarial review (revbt): a node process's calendar clock is the wall clock read once
at start plus the monotonic clock (docs/messages.md, "Block time"). A process started
before NTP set the host's clock (a boot with a wrong RTC, a container started before
chrony synced) keeps that error for its whole life, though the host's clock is right a
minute later: the operator did what docs/deployment.md asks (NTP), yet the node refuses
every honest block as too old (or too far ahead) and its own blocks are refused, until
someone restarts it. Moving the calendar forward to the wall clock keeps it monotonic."""

from __future__ import annotations

import asyncio
import time

from citychain.cluster import process
from citychain.cluster.transport import now_ns
from tests.cluster.test_process_certificates import chain

BEHIND = 600 * 10**9  # the host's clock was ten minutes slow when the process started


def test_a_process_started_on_a_slow_clock_follows_ntp_forward(tmp_path, monkeypatch):
    chain(tmp_path)
    real = time.time_ns

    async def go():
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(process.time, "time_ns", lambda: real() - BEHIND)
        running = process.open_node(tmp_path / "genesis", tmp_path / "data" / "node-01", "node-01", None, loop)
        try:
            monkeypatch.setattr(process.time, "time_ns", real)  # NTP steps the host's clock
            running.heartbeat()
            replica = running.node.replica
            calendar = replica.config.epoch_ns + now_ns(loop)
            certificates = running.node.membership.epoch_ns + now_ns(loop)
            return real() - calendar, real() - certificates
        finally:
            running.transport.cancel_all_timers("node-01")
            running.node.store.close()

    blocks, certificates = asyncio.run(go())
    assert abs(blocks) < 10**9 and abs(certificates) < 10**9, \
        f"the node's calendar stays {blocks / 1e9:.0f} s behind the corrected wall clock"
