"""The long fuzz run of issue 12: hostile bytes into a node's receive entry point.

    .venv/bin/python benchmarks/fuzz_decoder.py --seconds 300 --seed 1

Builds a 4-node chain (tests/fuzzkit.py), then for the given time feeds one node random
bytes, truncated and byte-mutated valid encodings of every message kind, envelopes with
any field replaced by a value of any JSON type or an extreme, bodies changed and then
validly signed by a real member key, block headers of the wrong types and huge lengths
and counts, all through ``Node.on_wire``. It prints the inputs tried (per family), the
refusals by reason, and the crashes: exceptions that escaped ``on_wire``, and refusals
under ``decode-error`` (an input that met no named check) or under a reason
docs/messages.md does not name. It exits 1 if there was any. Afterwards it runs the
4-node chain with a fuzzed node to check it still commits (--no-chain to skip).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzzkit import Kit, documented_reasons, feed, hostile, run_fuzzed_chain  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-chain", action="store_true", help="skip the fuzzed 4-node run at the end")
    args = parser.parse_args()

    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    documented = documented_reasons()
    rng = random.Random(args.seed)
    tried, reasons, crashes = Counter(), Counter(), Counter()
    started = time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            family, raw = hostile(kit, rng)
            tried[family] += 1
            try:
                reason = feed(node, raw, 10**9 + sum(tried.values()))
            except Exception as exc:  # noqa: BLE001 - what the run looks for
                crashes[f"{family}: {type(exc).__name__}: {exc}"[:200]] += 1
                if sum(crashes.values()) <= 3:
                    traceback.print_exc()
                continue
            reasons[reason or "(decoded; not refused)"] += 1
            if reason == "decode-error" or reason is not None and reason.split(":")[0] not in documented:
                crashes[f"{family}: refused as {reason!r}"] += 1
    wall = time.perf_counter() - started
    total = sum(tried.values())
    print(f"seed {args.seed}: {total} inputs in {wall:.0f} s ({total / wall:.0f}/s)")
    print("inputs by family:")
    for family, count in tried.most_common():
        print(f"  {family:20} {count}")
    print("outcome by reason:")
    for reason, count in reasons.most_common():
        print(f"  {reason:36} {count}")
    print(f"crashes: {sum(crashes.values())}")
    for what, count in crashes.most_common():
        print(f"  {count} x {what}")
    if not args.no_chain:
        heights, fed = run_fuzzed_chain(seed=args.seed, per_delivery=5, transactions=300)
        print(f"fuzzed 4-node chain: {fed} hostile inputs interleaved at one node; heights {heights}")
        if len(set(heights.values())) != 1 or min(heights.values()) < 1:
            print("the chain did not commit through the fuzz")
            return 1
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
