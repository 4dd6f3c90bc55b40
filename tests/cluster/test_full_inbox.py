"""Adversarial review (revfq) of the process inbox (citychain/cluster/inbox.py).

Finding R3: the inbox bounds each sender at PER_SENDER (2,000) messages and all of them
at MAX_INBOX (20,000), and a message past the total is refused whoever sent it (the
client library drops it, logging a warning, counted nowhere). Ten faulty members, each
within its own bound (f = 10 at n = 31; f = 19 at n = 60), fill the inbox, and then
every honest message is dropped: the flood no longer delays only its senders. A full
inbox should make room by dropping from the longest queue, and count it."""

from __future__ import annotations

from types import SimpleNamespace

from citychain.cluster.inbox import PER_SENDER, FairInbox
from citychain.cluster.process import MAX_INBOX


def _msg(src: str, k: int):
    return SimpleNamespace(topic=SimpleNamespace(value=f"chain/pbft/{src}"), k=k)


def test_faulty_members_within_their_bounds_cannot_fill_the_inbox_against_an_honest_one():
    dropped = []

    class Inbox(FairInbox):
        @staticmethod
        def drop(reason: str) -> None:
            dropped.append(reason)

    inbox = Inbox(maxsize=MAX_INBOX)
    faulty = MAX_INBOX // PER_SENDER  # 10: f at n = 31
    for f in range(faulty):
        for k in range(PER_SENDER):
            inbox.put_nowait(_msg(f"faulty-{f}", k))
    lost = 0
    for k in range(3):
        try:
            inbox.put_nowait(_msg("honest", k))
        except Exception:  # asyncio.QueueFull: the client library drops it, uncounted
            lost += 1
    assert lost == 0
    got = []
    while not inbox.empty():
        got.append(inbox.get_nowait())
    assert [m.k for m in got if m.topic.value.endswith("/honest")] == [0, 1, 2]
    assert len(got) <= MAX_INBOX
    assert dropped.count("backlog-full") == 3  # room made, and counted
