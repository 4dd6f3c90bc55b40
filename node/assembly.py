"""Putting one node together from a genesis: the same parts in the simulator and in a process.

The genesis fixes the rules every member must share (the replica set, the consensus
parameters, the applications' settings, who the clients are); what differs between
the simulator and a node process is only the transport, the clock, the costs and
where the ledger and durable state are kept.
"""

from __future__ import annotations

from apps import REGISTRY as APP_REGISTRY
from consensus.replica import Replica, ReplicaConfig, Restored

from .byzantine import Context, wrap


DEFAULT_CLOCK_SKEW_NS = 1_000_000_000  # a genesis written before max_clock_skew_ns existed


def replica_config(doc: dict, me: str, genesis_hash: str, membership=None) -> ReplicaConfig:
    """The replica configuration of member ``me`` under genesis ``doc``. With the node's
    ``membership``, blocks are dated on its calendar clock (``epoch_ns``: the calendar
    ns of node time 0) and a primary leaves out requests whose certificates do not hold
    at the block's date."""
    params = doc["consensus"]
    return ReplicaConfig(
        chain_id=doc["chain_id"], replicas=consensus_members(doc), me=me,
        genesis_hash=genesis_hash, genesis_state_root=doc["state_root"],
        block_size=params["block_size"], batch_timeout=params["batch_timeout_ns"],
        checkpoint_interval=params["checkpoint_interval"], watermark_window=params["watermark_window"],
        view_change_timeout=params["view_change_timeout_ns"], max_pending=params["max_pending"],
        epoch_ns=membership.epoch_ns if membership is not None else 0,
        max_clock_skew=params.get("max_clock_skew_ns", DEFAULT_CLOCK_SKEW_NS),
        request_valid_at=membership.request_valid_at if membership is not None else None)


def consensus_members(doc: dict) -> tuple[str, ...]:
    return tuple(m["id"] for m in doc["members"] if m["role"] == "consensus")


def replica_factory(config: ReplicaConfig, behaviour: str | None = None, ctx: Context | None = None):
    """Builds the node's replica, fresh or restored from its store, wrapped in a
    Byzantine behaviour if it has one (the wrapper is rebuilt on every restart)."""
    def make(saved: Restored | None) -> Replica:
        replica = Replica(config) if saved is None else Replica.restore(config, saved)
        return replica if behaviour is None else wrap(behaviour, replica, ctx)
    return make


def chain_apps(doc: dict) -> dict:
    """Every application, configured with the settings the genesis fixes for this chain."""
    settings = doc.get("apps") or {}
    return {name: cls(settings.get(name)) for name, cls in APP_REGISTRY.items()}


def client_directory(doc: dict) -> dict[str, tuple[str, str]]:
    """Client id -> (organisation, role), which the applications' policies check."""
    return {c["id"]: (c["org"], "client") for c in doc["clients"]}


def sync_timings(doc: dict) -> tuple[int, int]:
    """(fetch timeout, anti-entropy interval) in ns for a consensus node's state transfer."""
    params = doc["consensus"]
    return params["view_change_timeout_ns"] // 2, params["sync_interval_ns"]
