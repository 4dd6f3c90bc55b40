"""The network model: sites, one-way latency between them, jitter, uplink bandwidth, loss,
and the faults a scenario injects (partitions, slower or lossier links).

Each node has one uplink: copies of a broadcast leave one after another, each
taking size / bandwidth, so a large PRE-PREPARE to many peers costs the primary
real time. Destinations are served in an order rotated by sender, so no node is
always first. All randomness comes from the network's own seeded generator.
"""

from __future__ import annotations

import random
from heapq import heappush

from consensus.messages import Signed
from node.metrics import Metrics

from ..scenario import NetworkSpec
from .engine import Engine

MS = 1_000_000  # ns


def latency_ns(spec: NetworkSpec, site_a: str, site_b: str) -> int:
    lat = spec.latency
    if site_a == site_b:
        return round(lat.local_ms * MS)
    for link in lat.links:
        if set(link.between) == {site_a, site_b}:
            return round(link.ms * MS)
    return round(lat.default_ms * MS)


class _Link:
    """A receiver's ``on_message`` as one sender's link delivers to it: the receiver is
    told which peer the copy came from (its admission charges that peer's bucket, not
    the signer the envelope claims). ``__self__`` is the receiver, as for a bound method."""

    __slots__ = ("__self__", "on_message", "src")

    def __init__(self, on_message, src: str):
        self.__self__ = getattr(on_message, "__self__", None)
        self.on_message = on_message
        self.src = src

    def __call__(self, env, at: int) -> None:
        self.on_message(env, at, self.src)


class SimNetwork:
    def __init__(self, engine: Engine, spec: NetworkSpec, sites: dict[str, str], rng: random.Random,
                 metrics: Metrics):
        self.engine = engine
        self.spec = spec
        self.sites = sites  # node id -> site id
        self.rng = rng
        self.metrics = metrics
        self.ns_per_byte = 8e9 / (spec.bandwidth_mbps * 1e6)
        self.jitter = round(spec.jitter_ms * MS)
        self.handlers: dict = {}  # node id -> on_message
        self.voters: list[str] = []  # consensus members: the receivers of a broadcast
        self.timer_handlers: dict = {}  # node id -> on_timer
        self.uplink_free: dict[str, int] = {}
        self.group_of: dict[str, int] = {}  # partition: node -> group; empty when whole
        self.cuts: set[tuple[str, str]] = set()  # (src, dst) pairs cut one way
        self._arrive_bound = self._arrive  # one object, so heap entries can be recognised by identity
        self._next_copy_bound = self._next_copy
        self.overrides: dict[frozenset, tuple[int | None, float | None]] = {}  # site pair -> (latency, loss)
        self._routes: dict[str, list[tuple[_Link, int, float]]] = {}
        self._links: dict[tuple[str, str], tuple[int, float]] = {}
        self.ahead = None  # optional (envelope) -> None, told of every envelope sent (sim/verify.py)

    def attach(self, node_id: str, on_message, on_timer, votes: bool = True) -> None:
        self.handlers[node_id] = on_message
        if votes:
            self.voters.append(node_id)
        self.timer_handlers[node_id] = on_timer
        self.uplink_free[node_id] = 0
        self._changed()

    # ---- the model ------------------------------------------------------------------

    def link(self, src: str, dst: str) -> tuple[int, float]:
        """(one-way latency in ns, loss probability) from src's site to dst's, as things stand."""
        key = (src, dst)
        known = self._links.get(key)
        if known is None:
            a, b = self.sites[src], self.sites[dst]
            latency, loss = latency_ns(self.spec, a, b), self.spec.loss
            override = self.overrides.get(frozenset((a, b)))
            if override is not None:
                latency = latency if override[0] is None else override[0]
                loss = loss if override[1] is None else override[1]
            if self.group_of and self.group_of.get(src, -1) != self.group_of.get(dst, -1):
                loss = 1.0
            if (src, dst) in self.cuts:
                loss = 1.0
            known = self._links[key] = (latency, loss)
        return known

    def _route(self, src: str) -> list[tuple[_Link, int, float]]:
        route = self._routes.get(src)
        if route is None:
            peers = self.voters
            i = peers.index(src) if src in peers else 0
            order = [p for p in peers[i + 1:] + peers[:i] if p != src]
            route = self._routes[src] = [(_Link(self.handlers[p], src), *self.link(src, p)) for p in order]
        return route

    def _changed(self) -> None:
        self._routes.clear()
        self._links.clear()

    # ---- faults ---------------------------------------------------------------------

    def partition(self, groups: list[set[str]]) -> None:
        """Cut the network into groups; nodes in no group form one more group."""
        self.group_of = {node: i for i, group in enumerate(groups) for node in group}
        rest = len(groups)
        for node in self.handlers:
            self.group_of.setdefault(node, rest)
        self._changed()
        self._drop_in_flight()

    def cut(self, sources, targets) -> None:
        """From now on, messages from ``sources`` to ``targets`` are lost (one way)."""
        self.cuts |= {(s, t) for s in sources for t in targets if s != t}
        self._changed()
        self._drop_in_flight()

    def heal(self) -> None:
        """The partition and every one-way cut end."""
        self.group_of = {}
        self.cuts = set()
        self._changed()

    def _drop_in_flight(self) -> None:
        """With ``drop_in_flight``: copies on their way across a new partition or cut are
        lost. Their heap entries keep their keys (the heap stays a heap); only what they
        do on arrival changes."""
        if not self.spec.drop_in_flight:
            return
        heap = self.engine.heap
        for i, entry in enumerate(heap):
            if entry[2] is self._arrive_bound:
                src, handler, env = entry[3]
                if self.link(src, handler.__self__.id)[1] >= 1.0:
                    heap[i] = (entry[0], entry[1], self._lost_in_flight, env)

    def _arrive(self, item, at: int) -> None:
        _src, handler, env = item
        handler(env, at)

    def _lost_in_flight(self, env, at: int) -> None:
        self.metrics.lost += 1

    def set_link(self, site_a: str, site_b: str, latency_ms: float | None, loss: float | None) -> None:
        self.overrides[frozenset((site_a, site_b))] = (None if latency_ms is None else round(latency_ms * MS), loss)
        self._changed()

    # ---- Transport ----------------------------------------------------------------

    def broadcast(self, src: str, env: Signed, at: int) -> None:
        route = self._route(src)
        if self.ahead is not None:
            self.ahead(env)
        kind = env.message.KIND
        self.metrics.sent(kind, env.size, len(route))
        if kind == "pre-prepare":
            m = env.message
            self.metrics.pre_prepare(env.signer, m.view, m.seq, m.digest)
        self._transmit(src, env, at, route)

    def send(self, src: str, dst: str, env: Signed, at: int) -> None:
        if self.ahead is not None:
            self.ahead(env)
        kind = env.message.KIND
        self.metrics.sent(kind, env.size)
        if kind == "pre-prepare":  # an equivocating primary sends its versions one by one
            m = env.message
            self.metrics.pre_prepare(env.signer, m.view, m.seq, m.digest)
        self._transmit(src, env, at, ((_Link(self.handlers[dst], src), *self.link(src, dst)),))

    def client_send(self, near: str, dst: str, env: Signed, at: int) -> None:
        """A client at node ``near``'s site sends to ``dst`` (clients have their own uplinks)."""
        if self.ahead is not None:
            self.ahead(env)
        self.metrics.sent(env.message.KIND, env.size)
        latency, loss = self.link(near, dst)
        if loss and self.rng.random() < loss:
            self.metrics.lost += 1
            return
        jitter = int(self.rng.random() * self.jitter) if self.jitter else 0
        self.engine.at(at + latency + jitter, self.handlers[dst], env)

    def _transmit(self, src: str, env: Signed, at: int, route) -> None:
        per_copy = round(env.size * self.ns_per_byte)
        free = self.uplink_free[src]
        departure = at if at > free else free
        rand = self.rng.random
        jitter = self.jitter
        heap = self.engine.heap
        tiebreak = self.engine.counter
        copies = []
        for handler, lat, loss in route:  # one iteration per copy: kept flat
            departure += per_copy
            if loss and rand() < loss:
                self.metrics.lost += 1
                continue
            copies.append((departure + lat + (int(rand() * jitter) if jitter else 0), next(tiebreak), handler))
        self.uplink_free[src] = departure
        if self.spec.drop_in_flight:  # each copy its own heap entry, remembering its sender (a slower path)
            for arrival, tie, handler in copies:
                heappush(heap, (arrival, tie, self._arrive_bound, (src, handler, env)))
            return
        if len(copies) == 1:
            arrival, tie, handler = copies[0]
            heappush(heap, (arrival, tie, handler, env))
        elif copies:
            # The heap holds a broadcast's next copy only, not all n - 1 of them: with n²
            # copies in flight at n = 200 (30,000 entries) every push and pop walked a deep
            # heap of entries scattered in memory, and the cost per delivery grew with n
            # (docs/benchmarking.md, "Cost per block against n"). Each copy keeps the key
            # (arrival, tie-breaker) it had, so events run in exactly the same order.
            copies.sort(reverse=True)  # the keys are unique: the handlers are never compared
            arrival, tie, _handler = copies[-1]
            heappush(heap, (arrival, tie, self._next_copy_bound, (env, copies)))

    def _next_copy(self, item, at: int) -> None:
        """Deliver a broadcast's next copy, and put the one after it in the heap."""
        env, copies = item
        handler = copies.pop()[2]
        if copies:
            arrival, tie, _handler = copies[-1]
            heappush(self.engine.heap, (arrival, tie, self._next_copy_bound, item))
        handler(env, at)

    def start_timer(self, node: str, name: str, at: int) -> None:
        self.engine.start_timer((node, name), at, self._fire)

    def cancel_timer(self, node: str, name: str) -> None:
        self.engine.cancel_timer((node, name))

    def cancel_all_timers(self, node: str) -> None:
        self.engine.cancel_timers_of(node)

    def _fire(self, node: str, name: str, at: int) -> None:
        self.timer_handlers[node](name, at)
