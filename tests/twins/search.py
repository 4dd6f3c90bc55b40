"""The systematic search: enumerate scripted views, run each over real nodes, check
safety and liveness. In the spirit of Twins (Bano et al., 2022): per view, choose
how the nodes are cut off from each other in each phase, who restarts, and what
the one Byzantine node does; explore the combinations view by view, and explore
a world state reached twice only once.

The space, for n = 4 (f = 1) and two scripted views followed by healed ones:

- per view, a *decision cut*: none; node x hears no PRE-PREPARE (pp iso x); only x
  hears the PRE-PREPARE, the PREPAREs or the COMMITs (pp/prepare/commit only x);
- in view 1, a *view-change cut*: none; x neither sends nor hears VIEW-CHANGEs;
  only x hears the NEW-VIEW;
- a *state-transfer cut*, for both views: none, or x serves and gets no blocks;
- honest runs: per view, the set of nodes (at most three) that crash and restart
  as the view ends, keeping only what they wrote to disk;
- Byzantine runs (no restarts): one node takes one behaviour of node/byzantine.py,
  with each choice of the peers it favours.

Usage (docs/testing.md):
    .venv/bin/python -m tests.twins.search                 # the whole space
    .venv/bin/python -m tests.twins.search --slice 40      # every 40th view-1 script
    .venv/bin/python -m tests.twins.search --byzantine-only --jobs 2
    .venv/bin/python -m tests.twins.search --behaviour split-new-view
It prints how many scripts ran, how many distinct states were explored, the time,
and every failure with its script. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import sys
import time
from dataclasses import dataclass, field

from tests.twins.world import COMMIT, NV, PP, PREPARE, VC, Cut, Outcome, Round, Script, World

N = 4
NODES = tuple(f"node-{i:02d}" for i in range(N))
REFS = tuple(f"node-{i}" for i in range(N))  # as a scenario names them


def decision_cuts() -> list[tuple]:
    out: list[tuple] = [()]
    out += [((PP, Cut("iso", x)),) for x in NODES]
    for phase in (PP, PREPARE, COMMIT):
        out += [((phase, Cut("only", x)),) for x in NODES]
    return out


def view_change_cuts() -> list[tuple]:
    return [()] + [((VC, Cut("iso", x)),) for x in NODES] + [((NV, Cut("only", x)),) for x in NODES]


def sync_cuts() -> list[Cut | None]:
    return [None] + [Cut("iso", x) for x in NODES]


def restart_sets(most: int) -> list[tuple[str, ...]]:
    return [c for k in range(most + 1) for c in itertools.combinations(NODES, k)]


def rounds(view: int, restarts: bool, sync: Cut | None = None) -> list[Round]:
    vcs = view_change_cuts() if view > 0 else [()]
    again = restart_sets(3) if restarts else [()]
    return [Round(cuts=d + v, other=sync, restarts=r) for d in decision_cuts() for v in vcs for r in again]


def byzantine_choices() -> list[tuple]:
    bad = Script.bad
    peers_of = {ref: [p for p in REFS if p != ref] for ref in REFS}
    singles = {ref: [(p,) for p in peers_of[ref]] for ref in REFS}
    pairs = {ref: list(itertools.combinations(peers_of[ref], 2)) for ref in REFS}
    out = []
    for t in singles["node-1"] + pairs["node-1"]:  # the primary of view 1
        out.append(bad("node-1", "split-new-view", targets=t))
    for t in singles["node-1"]:
        out.append(bad("node-1", "two-new-views", targets=t))
        out.append(bad("node-1", "selective", targets=t, kinds=("new-view",)))
    for t in singles["node-0"]:  # the primary of view 0
        out.append(bad("node-0", "selective", targets=t, kinds=("pre-prepare",)))
        out.append(bad("node-0", "equivocate", targets=t))
    for ref in REFS:
        out.append(bad(ref, "forged-view-change"))
        out.append(bad(ref, "conflicting-votes"))
        out.append(bad(ref, "wrong-blocks"))
        out.append(bad(ref, "withhold-blocks"))
    return out


@dataclass
class Report:
    scripts: int = 0  # complete scripts judged
    states: int = 0  # distinct world states explored after view 0 and view 1
    healed_runs: int = 0  # liveness checks actually run (the rest share a state)
    failures: list[Outcome] = field(default_factory=list)

    def add(self, other: "Report") -> None:
        self.scripts += other.scripts
        self.states += other.states
        self.healed_runs += other.healed_runs
        self.failures += other.failures


def explore(byzantine: tuple, sync: Cut | None, slice_every: int = 1, offset: int = 0,
            max_failures: int = 20) -> Report:
    """Every (view 0, view 1) script for one Byzantine choice (() for none) and one
    state-transfer cut (it holds for both views)."""
    restarts = not byzantine
    byzantine = (byzantine,) if byzantine else ()
    first, second = rounds(0, restarts, sync), rounds(1, restarts, sync)
    report = Report()
    base = World(Script(N, (), byzantine))
    after_v0: dict[str, tuple[World, Round]] = {}
    for r0 in first:
        w = base.clone()
        w.play_round(r0)
        fork = w.fork()
        if fork:
            report.scripts += len(second)
            report.failures.append(Outcome(Script(N, (r0,), byzantine), False, False, fork))
            continue
        after_v0.setdefault(w.fingerprint(), (w, r0))
    report.states += len(after_v0)
    judged: dict[str, Outcome] = {}
    for w0, r0 in after_v0.values():
        for i, r1 in enumerate(second):
            if (i + offset) % slice_every:
                continue
            script = Script(N, (r0, r1), byzantine)
            w = w0.clone()
            w.script = script
            w.play_round(r1)
            report.scripts += 1
            fork = w.fork()
            if fork:
                report.failures.append(Outcome(script, False, False, fork))
            else:
                key = w.fingerprint()
                outcome = judged.get(key)
                if outcome is None:
                    outcome = judged[key] = w.heal()
                    report.healed_runs += 1
                if not (outcome.safe and outcome.live):
                    report.failures.append(Outcome(script, outcome.safe, outcome.live, outcome.detail))
            if len(report.failures) >= max_failures:
                report.states += len(judged)
                return report
    report.states += len(judged)
    return report


def _job(args) -> Report:
    return explore(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.twins.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--slice", type=int, default=1, metavar="K", help="run every K-th view-1 script (default 1: all)")
    parser.add_argument("--offset", type=int, default=0, help="which residue of --slice to run")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--honest-only", action="store_true", help="skip the Byzantine choices")
    parser.add_argument("--byzantine-only", action="store_true", help="skip the honest (restart) space")
    parser.add_argument("--behaviour", action="append", metavar="NAME",
                        help="only Byzantine choices with this behaviour (repeatable)")
    parser.add_argument("--max-failures", type=int, default=20, help="stop a choice after this many failures")
    args = parser.parse_args(argv)
    byzantine = [c for c in byzantine_choices() if not args.behaviour or dict(c)["behaviour"] in args.behaviour]
    choices = ([] if args.byzantine_only or args.behaviour else [()]) + ([] if args.honest_only else byzantine)
    work = [(b, sync, args.slice, args.offset, args.max_failures) for b in choices for sync in sync_cuts()]
    started = time.perf_counter()
    total = Report()
    if args.jobs > 1:
        with multiprocessing.Pool(args.jobs) as pool:
            for report in pool.imap(_job, work):
                total.add(report)
    else:
        for item in work:
            total.add(_job(item))
    elapsed = time.perf_counter() - started
    print(f"scripts run: {total.scripts:,}  distinct states explored: {total.states:,}  "
          f"liveness checks: {total.healed_runs:,}  Byzantine choices: {len(choices) - (not args.byzantine_only)}  "
          f"time: {elapsed:.1f} s")
    kinds = {"safety": sum(not o.safe for o in total.failures), "liveness": sum(o.safe and not o.live for o in total.failures)}
    print(f"failures: {len(total.failures)} (safety {kinds['safety']}, liveness {kinds['liveness']})")
    for what, kind in (("SAFETY", [o for o in total.failures if not o.safe]),
                       ("LIVENESS", [o for o in total.failures if o.safe])):
        for outcome in kind[:20]:  # the first of each kind
            print(f"  {what}: {outcome.script.describe()}\n      {outcome.detail}")
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
