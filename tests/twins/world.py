"""A scripted world for real nodes: rounds instead of clocks, cuts by round and phase.

Each round stands for one view. Within a round every message is delivered at
once (first in, first out) unless the round's script cuts it. Cuts are named by
phase, the way Twins names a partition per round, so "in view 0 only node-00
hears the COMMITs" is one line; state transfer and checkpoints (no phase)
follow the round's ``other`` cut, and client requests are never cut. Timers never fire by
themselves: within a round the world fires the short ones (batch, fetch, a
state-transfer retry), anti-entropy once at the end of the round, and the
view-change timers last, so the VIEW-CHANGEs travel in the next round. Restarts
happen at the end of a round, before the view-change timers fire: a restarted
process loses its timers and what was in flight to it, and keeps only what the
node wrote to disk; the client then resends what is not answered.

The nodes are the product's own (``node.Node`` built by the simulator's
``build``): authentication, durable state, state transfer and the Byzantine
wrappers all run as they do in a simulated run.
"""

from __future__ import annotations

import copy
import functools
from collections import deque
from dataclasses import dataclass, field

from consensus.messages import Commit, NewView, PrePrepare, Prepare, Request, ViewChange

PP, PREPARE, COMMIT, VC, NV = "pp", "prepare", "commit", "vc", "nv"
PHASES = (PP, PREPARE, COMMIT, VC, NV)
PHASE = {PrePrepare: PP, Prepare: PREPARE, Commit: COMMIT, ViewChange: VC, NewView: NV}
VIEW_TIMER = "view-change"
TICK_TIMER = "sync-tick"
ROUND_NS = 10_000_000_000  # virtual time a round stands for: longer than any timeout


@dataclass(frozen=True)
class Cut:
    """``iso``: the node neither sends nor hears; ``only``: only the node hears."""

    kind: str  # "iso" | "only"
    node: str

    def blocks(self, src: str, dst: str) -> bool:
        if self.kind == "iso":
            return self.node in (src, dst)
        return dst != self.node

    def __str__(self) -> str:
        return f"{self.kind} {self.node}"


@dataclass(frozen=True)
class Round:
    cuts: tuple[tuple[str, Cut], ...] = ()  # (phase, cut) for messages delivered in this round
    other: Cut | None = None  # for messages with no view but requests (checkpoints, state transfer)
    restarts: tuple[str, ...] = ()  # crash and restart, one after the other, as the round ends

    def describe(self) -> str:
        parts = [f"restart {'+'.join(self.restarts)}"] if self.restarts else []
        parts += [f"{phase} {cut}" for phase, cut in self.cuts]
        if self.other:
            parts.append(f"sync {self.other}")
        return ", ".join(parts) or "-"


@dataclass(frozen=True)
class Script:
    n: int
    rounds: tuple[Round, ...]
    byzantine: tuple[tuple[tuple[str, object], ...], ...] = ()  # scenario entries as sorted item tuples
    requests: int = 2

    @staticmethod
    def bad(node: str, behaviour: str, **params) -> tuple:
        """One Byzantine entry: Script.bad("node-1", "split-new-view", targets=("node-0",))."""
        return tuple(sorted({"node": node, "behaviour": behaviour, **params}.items()))

    def describe(self) -> str:
        head = f"n={self.n}"
        for entry in self.byzantine:
            b = dict(entry)
            head += f" {b['node']}:{b['behaviour']}" + (f"->{'+'.join(b['targets'])}" if b.get("targets") else "")
        return head + " | " + " | ".join(f"v{i} [{r.describe()}]" for i, r in enumerate(self.rounds))


@dataclass
class Outcome:
    script: Script
    safe: bool
    live: bool
    detail: str = ""
    heights: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0


class ScriptedNet:
    """The Transport the nodes see: a queue the world drains, and timers it fires."""

    def __init__(self, world: "World"):
        self.world = world

    def broadcast(self, src, env, at):
        queue = self.world.queue
        for dst in self.world.voters:
            if dst != src:
                queue.append((src, dst, env))

    def send(self, src, dst, env, at):
        self.world.queue.append((src, dst, env))

    def start_timer(self, node, name, at):
        self.world.timers[node].add(name)

    def cancel_timer(self, node, name):
        self.world.timers[node].discard(name)

    def cancel_all_timers(self, node):
        self.world.timers[node].clear()


@functools.lru_cache(maxsize=None)
def _base_scenario(n: int):
    from citychain.scenario import load_scenario
    from tests.conftest import SCENARIOS
    return load_scenario(SCENARIOS / "taihu.yaml").with_overrides(nodes=n)


@functools.lru_cache(maxsize=None)
def _genesis(n: int):
    from citychain.genesis import build_genesis
    return build_genesis(_base_scenario(n))  # the Byzantine list does not enter the genesis


@functools.lru_cache(maxsize=1024)
def _scenario(n: int, byzantine: tuple):
    base = _base_scenario(n)
    data = base.model_dump()
    data.update(byzantine=[{k: list(v) if isinstance(v, tuple) else v for k, v in b} for b in byzantine], faults=[])
    return type(base).model_validate(data)


class CachingSigner:
    """Signs as the node's signer does, and hands back the same envelope object for the
    same signed bytes (Ed25519 is deterministic, so the bytes would be equal anyway).
    Across the many branches of a search, the membership's verdict cache then checks
    each signature once."""

    def __init__(self, signer):
        from node.codec import signed_bytes
        self._signer, self._bytes, self.id, self.chain_id = signer, signed_bytes, signer.id, signer.chain_id
        self._cache: dict[bytes, object] = {}

    def sign(self, message):
        if type(message) is NewView and not message.signed:
            return self._signer.sign(message)
        data = self._bytes(message, self.chain_id, self.id)
        env = self._cache.get(data)
        if env is None:
            env = self._cache[data] = self._signer.sign(message)
        return env

    def __deepcopy__(self, memo):
        return self


class World:
    MAX_DELIVERIES = 100_000

    def __init__(self, script: Script, trace: bool = False):
        import citychain.sim.run as simrun
        self.script = script
        self.trace: list[str] | None = [] if trace else None
        real_build_genesis = simrun.build_genesis
        simrun.build_genesis = lambda _s: _genesis(script.n)
        try:
            self.run = simrun.build(_scenario(script.n, script.byzantine))
        finally:
            simrun.build_genesis = real_build_genesis
        self.nodes = self.run.nodes
        self.voters = list(self.run.genesis.replicas)
        self.byzantine = set(self.run.plan.byzantine)  # genesis ids
        self.queue: deque = deque()
        self.timers: dict[str, set[str]] = {name: set() for name in self.nodes}
        self.net = ScriptedNet(self)
        for node in self.nodes.values():
            node.transport = self.net
            node.signer = CachingSigner(node.signer)
            if node.syncer is not None:
                node.syncer.start(0)
        self.now = 0
        self.round = Round()
        self.healed = False  # after the scripted rounds nothing is cut any more
        self.deliveries = 0
        self.requests = self._requests(script.requests)

    def _requests(self, count: int):
        from node.signing import Signer
        genesis = self.run.genesis
        client = genesis.clients[0]
        signer = Signer(client.id, genesis.identities[client.id].key, genesis.chain_id)
        return [signer.sign(Request(i + 1, "records", "put", {"key": f"k{i}", "value": "v"}, i + 1))
                for i in range(count)]

    def clone(self) -> "World":
        """A copy to explore another branch from. What is immutable or a pure cache is
        shared: the genesis, the membership (and its verdict cache), signed envelopes,
        blocks, keys, apps and the execution memo; the rest is copied."""
        memo: dict = {}
        run = self.run
        # The simulator's engine, network and metrics are not used here (the nodes talk
        # through ScriptedNet); copying them would copy every node again.
        shared = [run.genesis, run.membership, run.apps, run.scenario, run.engine, run.network, run.metrics]
        for node in self.nodes.values():
            shared += [node.signer, node.membership, node.executor.apps, node.executor.directory,
                       node.executor.memo, node.cpu, node.make_replica]
        for env in self.requests:
            shared.append(env)
        for obj in shared:
            memo[id(obj)] = obj
        return copy.deepcopy(self, memo)

    # ---- delivery ------------------------------------------------------------------

    def _cut(self, src: str, dst: str, env) -> bool:
        if self.healed:
            return False
        kind = type(env.message)
        phase = PHASE.get(kind)
        if phase is None:
            if kind is Request:
                return False  # clients always reach a node in the end: they resend
            cut = self.round.other
            return cut is not None and cut.blocks(src, dst)
        return any(p == phase and cut.blocks(src, dst) for p, cut in self.round.cuts)

    def drain(self) -> None:
        queue, nodes = self.queue, self.nodes
        while queue:
            src, dst, env = queue.popleft()
            cut = self._cut(src, dst, env)
            if self.trace is not None:
                m = env.message
                self.trace.append(f"{'  cut ' if cut else '      '}{src} -> {dst} {m.KIND}"
                                  f"{' v=%d' % m.view if hasattr(m, 'view') else ''}"
                                  f"{' s=%d' % m.seq if hasattr(m, 'seq') else ''}"
                                  f"{' d=' + m.digest[:8] if hasattr(m, 'digest') else ''}")
            if cut:
                continue
            self.deliveries += 1
            if self.deliveries > self.MAX_DELIVERIES:
                raise RuntimeError(f"message storm: more than {self.MAX_DELIVERIES} deliveries")
            nodes[dst].on_message(env, self.now)

    def fire(self, only: frozenset[str] | None = None, skip: frozenset[str] = frozenset()) -> bool:
        fired = False
        for node_id in self.voters:
            for name in sorted(self.timers[node_id]):
                if name in skip or (only is not None and name not in only):
                    continue
                self.timers[node_id].discard(name)
                if self.trace is not None:
                    self.trace.append(f"  timer {node_id} {name}")
                self.nodes[node_id].on_timer(name, self.now)
                fired = True
        return fired

    def settle(self) -> None:
        """Deliver everything, firing the short timers a moment's wait would fire."""
        self.drain()
        for _ in range(4):
            self.now += ROUND_NS // 100
            if not self.fire(skip=frozenset((VIEW_TIMER, TICK_TIMER))):
                break
            self.drain()

    def restart(self, node_id: str) -> None:
        if self.trace is not None:
            self.trace.append(f"  restart {node_id}")
        node = self.nodes[node_id]
        node.crash(self.now)
        self.timers[node_id].clear()  # a crashed process loses its timers
        self.queue = deque(m for m in self.queue if m[1] != node_id)  # and what was in flight to it
        node.recover(self.now)

    def submit(self) -> None:
        """The client sends each request not yet on every honest node to every node."""
        done = self.committed_everywhere()
        for env in self.requests:
            if env.digest not in done:
                self.queue.extend(("client", node_id, env) for node_id in self.voters)

    # ---- judging -------------------------------------------------------------------

    @property
    def honest(self) -> list[str]:
        return [n for n in self.voters if n not in self.byzantine]

    def chains(self) -> dict[str, list[str]]:
        return {n: [e.block.hash for e in self.nodes[n].ledger.entries] for n in self.honest}

    def committed_everywhere(self) -> set[str]:
        sets = [{r.digest for e in self.nodes[n].ledger.entries for r in e.block.requests} for n in self.honest]
        return set.intersection(*sets) if sets else set()

    def fork(self) -> str | None:
        chains = self.chains()
        ids = list(chains)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                for h, (x, y) in enumerate(zip(chains[a], chains[b]), 1):
                    if x != y:
                        return f"height {h}: {a} holds {x[:12]}, {b} holds {y[:12]}"
        return None

    def fingerprint(self) -> str:
        """What the rest of a run can depend on: every node's chain, view, log, requests,
        view-change votes, state-transfer state and timers, and what is in flight.
        Two worlds with one fingerprint are explored once (a coarser one would prune
        unsoundly, so it errs on the side of detail)."""
        parts = []
        for n in self.voters:
            node = self.nodes[n]
            r = getattr(node.replica, "inner", node.replica)
            log = sorted((s, slot.view, slot.digest, slot.prepared, slot.committed,
                          slot.proof.pre_prepare.message.view if slot.proof else -1,
                          tuple(sorted((k, len(v)) for k, v in slot.prepares.items())),
                          tuple(sorted((k, len(v)) for k, v in slot.commits.items())))
                         for s, slot in r.log.items())
            vcs = sorted((v, tuple(sorted(votes))) for v, votes in r.view_changes.items())
            sync = node.syncer
            # Pre-prepares held back (for the block below, or O's entries kept above the
            # window until state transfer reaches them) and blocks being fetched by digest.
            held = (sorted((s, e[0].message.view, e[0].message.digest, e[1]) for s, e in r.deferred.items()),
                    sorted(r.kept_above.items()), r.decided,
                    sorted((d, f.seq, f.pre is not None, f.for_view) for d, f in r.fetching.items()))
            parts.append(repr((n, node.ledger.head_hash, r.view, r.active, r.installed_view, r.low, r.executed,
                               log, held, vcs, sorted(r.pending), sorted(r.accepted), sorted(r.future),
                               sorted((v, tuple(sorted(s))) for v, s in r.evidence.items()),
                               (sync.target, sync.asked) if sync else None, sorted(self.timers[n]),
                               node.store.read().fingerprint() if hasattr(node, "store") else None)))
        parts.append(repr([(src, dst, env.digest) for src, dst, env in self.queue]))
        return "|".join(parts)

    # ---- a whole run -----------------------------------------------------------------

    def play_round(self, rnd: Round) -> None:
        self.round = rnd
        self._mark(rnd.describe())
        self.submit()  # clients resend what is not answered (section 4.1)
        self.settle()
        self.fire(only=frozenset((TICK_TIMER,)))  # anti-entropy, once a round
        self.settle()
        for node_id in rnd.restarts:
            self.restart(node_id)
            self.submit()
            self.settle()
        self.now += ROUND_NS
        self.fire(only=frozenset((VIEW_TIMER,)))  # a long wait: view changes start

    def play(self, heal_rounds: int = 8) -> Outcome:
        for rnd in self.script.rounds:
            self.play_round(rnd)
            fork = self.fork()
            if fork:
                return self._outcome(False, False, fork)
        return self.heal(heal_rounds)

    def heal(self, heal_rounds: int = 8) -> Outcome:
        """No more cuts: every request must reach every honest node, with one chain."""
        self.healed = True
        wanted = {r.digest for r in self.requests}
        for _ in range(heal_rounds):
            self.play_round(Round())
            fork = self.fork()
            if fork:
                return self._outcome(False, False, fork)
            if wanted <= self.committed_everywhere() and len({len(c) for c in self.chains().values()}) == 1:
                return self._outcome(True, True, "")
        missing = len(wanted - self.committed_everywhere())
        views = {n: (self.nodes[n].replica.view, self.nodes[n].replica.active) for n in self.honest}
        return self._outcome(True, False, f"{missing} of {len(wanted)} requests not on every honest node after "
                                          f"{heal_rounds} healed rounds; (view, active): {views}")

    def _mark(self, what: str) -> None:
        if self.trace is not None:
            views = " ".join(f"{n}:{self.nodes[n].replica.view}{'' if self.nodes[n].replica.active else '*'}"
                             f"/h{self.nodes[n].ledger.height}" for n in self.voters)
            self.trace.append(f"== {what}   [{views}]")

    def _outcome(self, safe: bool, live: bool, detail: str) -> Outcome:
        return Outcome(self.script, safe, live, detail, {n: self.nodes[n].ledger.height for n in self.honest},
                       self.deliveries)
