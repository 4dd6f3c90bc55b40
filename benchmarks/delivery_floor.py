"""The least CPython can pay per delivered copy: a lower bound for the simulator's loop.

Issue 13 asks whether the equal-work run at n = 64 (847,311 deliveries, 13,900 unique
signatures) can take 2.0 s whole process in pure Python with one event per delivered
copy. This times, in this process, loops that do less than the simulator must:

- bare: per copy one heappush, one heappop, one method call and one dict update (the
  issue's minimum), with about as many events in flight as the run has;
- model: the same plus the least a faithful node does per copy: the per-sender
  admission bucket (a dict read and write), the signature-verdict cache look-up, the
  node's set of checked signatures, the vote recorded under (view, digest) and signer,
  the quorum count and the CPU charge; all inline in one function, no objects made.

and prints CPU seconds (this thread) for the run's number of deliveries. Compare with the
crypto floor (benchmarks/equal_work.py) and Python's start-up. See docs/benchmarking.md.

    python benchmarks/delivery_floor.py                 # 847,311 deliveries, n = 64
    python benchmarks/delivery_floor.py --deliveries 208700 --nodes 32
"""

from __future__ import annotations

import argparse
import time
from heapq import heappop, heappush
from itertools import count


class Bare:
    __slots__ = ("seen",)

    def __init__(self):
        self.seen = {}

    def on_message(self, env, at: int) -> None:
        self.seen[env] = at


class Model:
    __slots__ = ("full_at", "verified", "votes", "busy", "cpu", "verdicts")

    def __init__(self, verdicts: dict):
        self.full_at = {}
        self.verified = set()
        self.votes = {}
        self.busy = 0
        self.cpu = 0
        self.verdicts = verdicts

    def on_message(self, env, at: int) -> None:
        signer, key, signature = env
        full = self.full_at.get(signer, at)  # admission: the sender's bucket
        if full < at:
            full = at
        if full - at > 1_000_000_000:
            return
        self.full_at[signer] = full + 200_000
        if self.verdicts.get(signature, 0) is not None:  # the cached verdict
            return
        t = (at if at > self.busy else self.busy) + 112_000
        verified = self.verified
        verified.add(signature)
        if len(verified) > 8192:
            verified.clear()
        votes = self.votes.get(key)
        if votes is None:
            votes = self.votes[key] = {}
        if signer in votes:
            return
        votes[signer] = env
        if len(votes) == 43:  # the quorum
            pass
        self.cpu += t - self.busy if t > self.busy else 0
        self.busy = t


def run(nodes: list, deliveries: int, in_flight: int, envelopes: list) -> float:
    """CPU seconds to push and pop ``deliveries`` events, ``in_flight`` at a time, each calling
    a node's ``on_message``."""
    heap: list = []
    tiebreak = count(1)
    handlers = [n.on_message for n in nodes]
    k = len(handlers)
    e = len(envelopes)
    # Copy p goes to node (p // e) % k and carries envelope p % e: no node gets a copy twice.
    for i in range(in_flight):
        heappush(heap, (i * 997 % 4_000_000, next(tiebreak), handlers[(i // e) % k], envelopes[i % e]))
    start = time.thread_time()
    pushed = in_flight
    done = 0
    while heap:
        at, _, fn, env = heappop(heap)
        fn(env, at)
        done += 1
        if pushed < deliveries:  # keep the heap at its size: one copy out, one in
            heappush(heap, (at + 2_000_000 + pushed * 7919 % 500_000, next(tiebreak), handlers[(pushed // e) % k],
                            envelopes[pushed % e]))
            pushed += 1
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=847_311)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--in-flight", type=int, default=4_000, help="events in the heap at a time")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.nodes
    # The run's votes: (signer, (view, digest), signature), n per block; every verdict cached good.
    blocks = args.deliveries // (n * (n - 1)) + 1
    envelopes = [(f"node-{i:02d}", (0, f"digest-{b}"), f"sig-{b}-{i}".encode()) for b in range(blocks) for i in range(n)]
    verdicts = {signature: None for _s, _k, signature in envelopes}
    print(f"{args.deliveries:,} deliveries, {n} nodes, {args.in_flight:,} in flight; CPU seconds of this thread, "
          f"best of {args.repeat}")
    for name, make in (("bare", Bare), ("model", lambda: Model(verdicts))):
        best = min(run([make() for _ in range(n)], args.deliveries, args.in_flight, envelopes)
                   for _ in range(args.repeat))
        print(f"{name:>6}: {best:6.2f} s, {1e6 * best / args.deliveries:5.2f} us per delivery")


if __name__ == "__main__":
    main()
