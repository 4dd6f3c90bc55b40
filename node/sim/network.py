"""The network model: sites, one-way latency between them, jitter, uplink bandwidth, loss.

Each node has one uplink: copies of a broadcast leave one after another, each
taking size / bandwidth, so a large PRE-PREPARE to many peers costs the primary
real time. Destinations are served in an order rotated by sender, so no node is
always first. All randomness comes from the network's own seeded generator.
"""

from __future__ import annotations

import random

from consensus.messages import Signed

from ..metrics import Metrics
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
        self.loss = spec.loss
        self.handlers: dict = {}  # node id -> on_message
        self.timer_handlers: dict = {}  # node id -> on_timer
        self.uplink_free: dict[str, int] = {}
        self._routes: dict[str, list[tuple[str, int]]] = {}
        self._latency: dict[tuple[str, str], int] = {}

    def attach(self, node_id: str, on_message, on_timer) -> None:
        self.handlers[node_id] = on_message
        self.timer_handlers[node_id] = on_timer
        self.uplink_free[node_id] = 0
        self._routes.clear()

    def _route(self, src: str) -> list[tuple[str, int]]:
        route = self._routes.get(src)
        if route is None:
            peers = [p for p in self.handlers if p in self.sites]
            i = peers.index(src) if src in peers else 0
            order = [p for p in peers[i + 1:] + peers[:i] if p != src]
            route = self._routes[src] = [(p, self.link_latency(src, p)) for p in order]
        return route

    def link_latency(self, src: str, dst: str) -> int:
        key = (src, dst)
        lat = self._latency.get(key)
        if lat is None:
            lat = self._latency[key] = latency_ns(self.spec, self.sites[src], self.sites[dst])
        return lat

    # ---- Transport ----------------------------------------------------------------

    def broadcast(self, src: str, env: Signed, at: int) -> None:
        route = self._route(src)
        self.metrics.sent(env.message.KIND, env.size, len(route))
        self._transmit(src, env, at, route)

    def send(self, src: str, dst: str, env: Signed, at: int) -> None:
        self.metrics.sent(env.message.KIND, env.size)
        self._transmit(src, env, at, ((dst, self.link_latency(src, dst)),))

    def _transmit(self, src: str, env: Signed, at: int, route) -> None:
        per_copy = round(env.size * self.ns_per_byte)
        free = self.uplink_free[src]
        departure = at if at > free else free
        rand = self.rng.random
        jitter, loss = self.jitter, self.loss
        handlers = self.handlers
        at_ = self.engine.at
        for dst, lat in route:
            departure += per_copy
            if loss and rand() < loss:
                self.metrics.lost += 1
                continue
            arrival = departure + lat + (int(rand() * jitter) if jitter else 0)
            at_(arrival, handlers[dst], env)
        self.uplink_free[src] = departure

    def start_timer(self, node: str, name: str, at: int) -> None:
        self.engine.start_timer((node, name), at, self._fire)

    def cancel_timer(self, node: str, name: str) -> None:
        self.engine.cancel_timer((node, name))

    def _fire(self, node: str, name: str, at: int) -> None:
        self.timer_handlers[node](name, at)
