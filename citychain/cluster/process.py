"""One or more consensus (or observer) nodes running as an OS process against an MQTT broker.

The node is the simulator's ``node.Node`` unchanged: the same replica, the same
authentication, durable state, state transfer and Byzantine wrappers. Only its
surroundings differ: an ``MqttTransport`` instead of the simulated network, the
loop's monotonic clock instead of virtual time, no modelled CPU costs (the CPU is
real), and a store on disk instead of memory. A restarted process reads its store
and rejoins exactly as a simulated node recovers from a crash.

Each node has its own broker connection and credentials (``DIR/ID/broker.json``),
so the broker's ACL holds every node to its own topics even when several nodes
share a process. A lost connection is retried with back-off; the node keeps its
state and PBFT's timers and state transfer catch up on what it missed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import random
import signal
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiomqtt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.subscribeoptions import SubscribeOptions

from consensus.durable import DurableState
from consensus.replica import Replica
from node.admission import Admission, Limits
from node.assembly import chain_apps, client_directory, consensus_members, replica_config, replica_factory, sync_timings
from node.byzantine import BEHAVIOURS, Context, syncer_for
from node.checker import ChainChecker
from node.codec import MalformedMessage, decode
from node.costs import NO_COSTS
from node.execution import Executor
from node.genesis import CRL_FILE, membership_from_doc, read_crl, read_genesis
from node.identity import public_key_of
from node.metrics import Metrics
from node.node import Node
from node.observer import ObserverConfig, ObserverReplica
from node.revocation import parse_crl
from node.signing import Signer
from node.sqlite_store import StorageError, open_node_storage
from node.sync import Syncer

from . import topics
from .counting import CountingTransport
from .crl_watch import CrlWatch, keep_crl
from .endpoint import Endpoint, read_credentials
from .inbox import FairInbox
from .notices import sign_notice
from .transport import MqttTransport, now_ns

QOS = 1  # docs/deployment.md: why at-least-once
MAX_IN_FLIGHT = 256  # publishes awaiting their acknowledgement, per connection
HEARTBEAT_S = 1.0
# The calendar clock follows the wall clock forward when it is this far ahead (a host
# whose clock NTP set after the process started); it never moves back.
CLOCK_FOLLOW_NS = 50_000_000
# A block's report rides in this many heartbeats after the notice that first carried it,
# and again after every reconnection, for the last RECENT_BLOCKS blocks: a notice lost
# with a dying broker, or sent before a watcher resubscribed, must not leave a
# transaction unanswered for good (the watcher counts each node once per block).
REPEATS = 3
RECENT_BLOCKS = 16
MAX_INBOX = 20_000  # received messages waiting to be handled, all senders (each: inbox.PER_SENDER); beyond, the client library drops them
VERDICT_CACHE = 100_000  # signature checks remembered (about 30 MB at most)
PEER_SILENCE_S = 3.0  # a peer not heard from for this long is not listed as connected
# Per-sender admission, checked on the topic's sender (which the broker's ACL vouches
# for) as a message arrives, before it is queued, decoded or verified; the inbox above
# bounds the total.
# docs/deployment.md, "Admission": an honest node or client sends far less.
PROCESS_LIMITS = Limits(rate=1_000, burst=2_000, max_backlog_ms=0)

log = logging.getLogger("citychain.node")
MQTT_LOG = logging.getLogger("citychain.node.mqtt")
MQTT_LOG.setLevel(logging.ERROR)  # aiomqtt warns about every burst of unacknowledged publishes


class NodeSetupError(RuntimeError):
    """The node cannot start: a missing or mismatched key, genesis or data directory."""


class StoreFailed(RuntimeError):
    """A durable write failed (disk full, I/O error): the node stops (exit 1) and, once
    the disk is fixed, restarts from its store, which holds every write that returned."""

    def __init__(self, node_id: str, cause: BaseException):
        super().__init__(f"{node_id}: its store failed: {cause}")
        self.node_id = node_id


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise NodeSetupError(f"{path}: cannot read the node's private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeSetupError(f"{path}: not an Ed25519 private key")
    return key


def write_private_key(path: Path, key) -> None:
    """A private key (Ed25519 or X25519) as unencrypted PKCS#8 PEM, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@dataclass
class RunningNode:
    """A node, its transport and what its process reports about it."""

    id: str
    role: str
    node: Node
    transport: MqttTransport
    metrics: Metrics
    key: Ed25519PrivateKey
    chain_id: str
    loop: asyncio.AbstractEventLoop
    published_height: int = 0
    published_view: int = -1
    peers: frozenset[str] = frozenset()  # the other consensus nodes and observers
    peers_seen: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    inbox: object = None  # the connection's queue of received messages (its length is the backlog)
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_BLOCKS))  # [report, heartbeats left]
    failed: "StoreFailed | None" = None
    on_failure: object = None  # called with StoreFailed: the process stops
    admission: Admission = field(default_factory=lambda: Admission(PROCESS_LIMITS))
    crl: CrlWatch | None = None  # the CA's revocation list, reloaded while the node runs

    # ---- inbound -----------------------------------------------------------------

    def admit(self, topic: str) -> bool:
        """As a message arrives, before it is queued: is its sender (the topic's last
        level) within its bucket? A refused one costs this look-up and is counted.
        Anything else (a topic of no member) is queued and refused by ``deliver``."""
        src = topic[topic.rfind("/") + 1:]
        if src not in self.node.membership.members:
            return True
        refused = self.admission.admit(src, now_ns(self.loop))
        if refused is not None:
            self.metrics.drop(self.id, refused)
            return False
        return True

    def deliver(self, topic: str, payload: bytes, admitted: bool = False) -> None:
        """Handle one received message (``admitted``: it passed ``admit`` on arrival)."""
        if admitted or self.admit(topic):
            self._deliver(topic, payload)
        self.transport.handled_one()

    def _deliver(self, topic: str, payload: bytes) -> None:
        try:
            src = topics.parse(topic, self.chain_id).src
        except ValueError:
            self.metrics.drop(self.id, "unknown-topic")
            return
        if src == self.id:
            return  # its own broadcast, looped back through a bridge
        if src not in self.node.membership.members:
            self.metrics.drop(self.id, "unknown-signer")
            return
        if src in self.peers:
            self.peers_seen[src] = self.loop.time()
        try:
            env = decode(payload, self.chain_id)
        except MalformedMessage as exc:
            self.metrics.drop(self.id, exc.reason)
            return
        except Exception:  # noqa: BLE001 - decode promises MalformedMessage; a slip must not stop the node
            self.metrics.drop(self.id, "malformed")
            log.exception("node %s: undecodable message on %s", self.id, topic)
            return
        self._guarded(self.node.on_message, env)

    def on_timer(self, name: str, now: int) -> None:
        self._guarded(self.node.on_timer, name)

    def _guarded(self, handler, arg) -> None:
        """Hostile input must never stop a node: an unexpected error is logged and
        counted, and the node goes on with the next message. A failed write to its
        store is the exception: the node may not go on without durable state (it
        could vote twice after a restart), so the process stops (``StoreFailed``)."""
        if self.failed is not None:
            return  # stopped: nothing more is handled, nothing more is sent
        try:
            handler(arg, now_ns(self.loop))
        except (StorageError, sqlite3.Error) as exc:
            self.failed = StoreFailed(self.id, exc)
            self.transport.outbox.clear()
            if self.on_failure is not None:
                self.on_failure(self.failed)
            return
        except Exception:  # noqa: BLE001 - the process must outlive any single input
            self.errors += 1
            self.metrics.drop(self.id, "internal-error")
            log.exception("node %s: error while handling %r", self.id, type(arg).__name__)
        self.after_step()

    # ---- outbound notices ------------------------------------------------------------

    def after_step(self) -> None:
        ledger = self.node.ledger
        view = self.node.replica.installed_view
        if ledger.height > self.published_height or view != self.published_view:
            new = ledger.entries[self.published_height:]
            self.published_height = ledger.height
            if new and log.isEnabledFor(logging.DEBUG):
                for e in new:
                    log.debug(json.dumps({"node": self.id, "event": "executed", "height": e.block.height,
                                          "txs": len(e.block.requests), "view": view}))
            if view != self.published_view and self.published_view >= 0:
                log.info(json.dumps({"node": self.id, "event": "view-installed", "view": view}))
            self.published_view = view
            reports = [{"height": e.block.height, "hash": e.block.hash, "txs": [r.digest for r in e.block.requests],
                        "rejected": [r.tx for r in e.receipts if not r.ok]} for e in new]
            self.recent.extend([report, REPEATS] for report in reports)
            self.publish_status(reports)

    def follow_wall_clock(self) -> None:
        """The calendar clock is the wall clock at start plus monotonic time. If the wall
        clock has since moved ahead of it (NTP set the host's clock after the process
        started), move it forward to match, for certificates and block times alike; never
        back, so the node's dates never decrease (docs/messages.md, "Block time")."""
        membership = self.node.membership
        ahead = time.time_ns() - (membership.epoch_ns + now_ns(self.loop))
        if ahead <= CLOCK_FOLLOW_NS:
            return
        epoch = membership.epoch_ns + ahead
        membership.epoch_ns = epoch
        replica = self.node.replica
        while type(replica) is not Replica and "inner" in getattr(replica, "__dict__", {}):
            replica = replica.__dict__["inner"]  # a Byzantine behaviour's wrapped replica
        if type(replica) is Replica:
            replica.config = replace(replica.config, epoch_ns=epoch)
        log.warning(json.dumps({"node": self.id, "event": "clock-moved-forward", "by_ns": ahead}))

    def heartbeat(self) -> None:
        """The periodic notice, repeating the reports of recently executed blocks."""
        if self.crl is not None:
            self.crl.check()
        self.follow_wall_clock()
        repeated = [entry[0] for entry in self.recent if entry[1] > 0]
        for entry in self.recent:
            entry[1] = max(0, entry[1] - 1)
        self.publish_status(repeated)

    def reconnected(self) -> None:
        """What was published just before the connection dropped may be lost: the last
        blocks' reports ride in the next heartbeats again."""
        for entry in self.recent:
            entry[1] = REPEATS

    def status_body(self, blocks: list) -> dict:
        node, now = self.node, self.loop.time()
        replica = node.replica
        return {
            "type": "status", "chain": self.chain_id, "node": self.id, "role": self.role, "pid": os.getpid(),
            "time_ns": time.time_ns(), "height": node.ledger.height, "head": node.ledger.head_hash,
            "transactions": node.ledger.transactions, "view": replica.view, "installed_view": replica.installed_view,
            "active": replica.active, "peers": sorted(p for p, t in self.peers_seen.items()
                                                      if now - t < PEER_SILENCE_S),
            "drops": dict(sorted(self.metrics.drops_by_reason().items())),
            "sent": sum(self.metrics.messages.values()), "bytes": sum(self.metrics.bytes.values()),
            "sent_by_type": dict(self.metrics.messages), "bytes_by_type": dict(self.metrics.bytes),
            "bcast_by_type": dict(getattr(self.transport, "broadcasts", {})),
            "bcast_bytes_by_type": dict(getattr(self.transport, "broadcast_bytes", {})),
            "blocks": blocks}

    def debug_state(self) -> dict:
        """What ``kill -USR1`` logs: the replica's view-change state and pending timers."""
        r = self.node.replica
        inner = getattr(r, "inner", r)
        return {"node": self.id, "event": "state", "view": r.view, "active": r.active,
                "installed_view": r.installed_view,
                "view_changes": {str(v): sorted(votes) for v, votes in getattr(inner, "view_changes", {}).items()},
                "new_views_done": sorted(getattr(inner, "new_views_done", ())),
                "timers": sorted(self.transport.timers), "outbox": len(self.transport.outbox),
                "inbox": self.inbox.qsize() if self.inbox is not None else None,
                "pending": len(getattr(inner, "pending", ()))}

    def publish_status(self, blocks: list) -> None:
        payload = sign_notice(self.key, self.status_body(blocks))
        self.transport.post_raw(topics.status(self.chain_id, self.id), payload, "status")


def open_node(genesis_dir: Path, data_dir: Path, node_id: str, behaviour: str | None,
              loop: asyncio.AbstractEventLoop) -> RunningNode:
    """Build node ``node_id`` from the genesis and its data directory, restoring what it stored."""
    try:
        doc, ghash = read_genesis(Path(genesis_dir) / "genesis.json")  # the hash is over the exact bytes
        ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NodeSetupError(f"{genesis_dir}/genesis.json: not a readable citychain genesis ({exc})") from None
    crl_path = Path(genesis_dir) / CRL_FILE
    try:  # the CRL's own faults are its own: say which file, not genesis.json
        crl = read_crl(Path(genesis_dir))
        listed = parse_crl(crl, ca) if crl is not None else None
        next_update = listed.next_update if listed is not None else None
    except (OSError, ValueError, TypeError) as exc:
        raise NodeSetupError(f"{crl_path}: not a revocation list of this chain's CA ({exc})") from None
    # The newest list this node ever took, kept in its data directory: an older list in
    # the genesis directory (a stale copy, a rollback) must not un-revoke anyone on restart.
    kept_path = Path(data_dir) / CRL_FILE
    try:
        kept_pem = read_crl(Path(data_dir))
        kept = parse_crl(kept_pem, ca) if kept_pem is not None else None
    except (OSError, ValueError, TypeError) as exc:
        raise NodeSetupError(f"{kept_path}: not a revocation list of this chain's CA ({exc})") from None
    if kept is not None and (listed is None or listed.older_than(kept) is not None):
        if crl != kept_pem:
            log.warning(json.dumps({"node": node_id, "event": "revocation-list-refused", "trigger": "start",
                                    "file": str(crl_path), "reason": "not newer than the list kept in "
                                    f"{kept_path}" if listed is not None else "the file is gone",
                                    "kept_crl_number": kept.number}))
        crl, listed = kept_pem, kept
        next_update = listed.next_update
    elif crl is not None:
        try:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            keep_crl(kept_path, crl)
        except OSError as exc:
            raise NodeSetupError(f"{kept_path}: cannot keep the revocation list ({exc})") from None
    if next_update is not None and next_update < datetime.datetime.now(datetime.timezone.utc):
        # RFC 5280: past its nextUpdate the list is stale (the CA may have revoked more since).
        log.warning(json.dumps({"node": node_id, "event": "revocation-list-stale", "file": str(crl_path),
                                "next_update": next_update.isoformat()}))
    try:
        # Certificates and block times are on the wall clock: node time is the loop's
        # monotonic clock, so the calendar is the wall clock at start plus monotonic time.
        membership = membership_from_doc(doc, cache_limit=VERDICT_CACHE, crl=crl,
                                         epoch_ns=time.time_ns() - now_ns(loop))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeSetupError(f"{genesis_dir}/genesis.json: not a readable citychain genesis ({exc})") from None
    if node_id in membership.refused:  # every peer would refuse it: say so rather than run unheard
        raise NodeSetupError(f"{node_id}: its certificate in the genesis is refused ({membership.refused[node_id]})")
    own = membership.certificate_refusal(node_id, now_ns(loop))
    if own is not None:  # it may become valid (or it expired): run, but say why nobody listens
        log.warning(json.dumps({"node": node_id, "event": "own-certificate-refused", "reason": own}))
    for member, reason in sorted(membership.refused.items()):
        log.warning(json.dumps({"node": node_id, "event": "member-refused", "member": member, "reason": reason}))
    entry = next((m for m in doc["members"] if m["id"] == node_id), None)
    if entry is None or entry["role"] not in ("consensus", "observer"):
        raise NodeSetupError(f"{node_id} is not a consensus node or observer of chain {doc['chain_id']}")
    if behaviour is not None and behaviour not in BEHAVIOURS:
        raise NodeSetupError(f"unknown behaviour {behaviour!r}; one of {', '.join(sorted(BEHAVIOURS))}")
    chain_id = doc["chain_id"]
    key = load_private_key(data_dir / "key.pem")
    cert_key = public_key_of(x509.load_pem_x509_certificate(entry["cert"].encode()))
    if cert_key.public_bytes_raw() != key.public_key().public_bytes_raw():
        raise NodeSetupError(f"{data_dir / 'key.pem'} is not the key of {node_id}'s certificate in the genesis")
    signer = Signer(node_id, key, chain_id)
    metrics = Metrics()
    transport = CountingTransport(chain_id, node_id, loop, metrics)
    try:
        store, ledger, state = open_node_storage(data_dir, chain_id, ghash, genesis_state_root=doc["state_root"])
    except StorageError as exc:
        raise NodeSetupError(str(exc)) from None
    replicas = consensus_members(doc)
    checker = ChainChecker(membership, ghash, set(replicas))
    timeout, interval = sync_timings(doc)
    executor = Executor(chain_apps(doc), client_directory(doc), state)
    if entry["role"] == "consensus":
        ctx = None
        if behaviour is not None:
            honest = [r for r in replicas if r != node_id]
            ctx = Context(node_id, replicas, signer, random.Random(f"citychain-node/{chain_id}/{node_id}"),
                          frozenset({node_id}) if behaviour == "fork" else frozenset(),
                          honest_groups=(tuple(honest[0::2]), tuple(honest[1::2])))
        syncer_class = syncer_for(behaviour)
        node = Node(node_id, replica_factory(replica_config(doc, node_id, ghash, membership), behaviour, ctx), signer,
                    membership, transport, executor, ledger, metrics, NO_COSTS,
                    syncer=lambda nd: syncer_class(nd, checker, timeout, interval), store=store,
                    limits=None)  # admitted by topic in ``deliver``
    else:
        watcher = ObserverConfig(chain_id, replicas, node_id)
        node = Node(node_id, lambda _saved: ObserverReplica(watcher), signer, membership, transport, executor,
                    ledger, metrics, NO_COSTS, syncer=lambda nd: Syncer(nd, checker, timeout, interval // 2),
                    store=store, limits=None)
    running = RunningNode(node_id, entry["role"], node, transport, metrics, key, chain_id, loop,
                          peers=frozenset(m["id"] for m in doc["members"] if m["id"] != node_id),
                          published_height=ledger.height,
                          crl=CrlWatch(node_id, genesis_dir, doc, ca, membership, listed, keep=kept_path))
    transport.attach(running.on_timer, lambda: running.inbox.qsize() if running.inbox is not None else 0)
    now = now_ns(loop)
    if ledger.height > 0 or store.read() != DurableState():
        try:
            node.recover(now)  # a restart: the replica is rebuilt from its store and catches up
        except (StorageError, sqlite3.Error) as exc:
            raise NodeSetupError(f"{data_dir}: its store failed while restarting: {exc}") from None
        log.info(json.dumps({"node": node_id, "event": "restored", "height": ledger.height,
                             "view": node.replica.view}))
    else:
        node.syncer.start(now)
    return running


def _inbox_for(running: RunningNode) -> type[asyncio.Queue]:
    """The connection's inbox: a message its sender's bucket refuses is never queued, so a
    flood costs no memory in the queue; the admitted wait per sender and are served in
    turn, so a flood within its bucket takes no place ahead of honest messages."""

    class Inbox(FairInbox):
        @staticmethod
        def admit(item) -> bool:
            return running.admit(item.topic.value)

        @staticmethod
        def drop(reason: str) -> None:
            running.metrics.drop(running.id, reason)

    return Inbox


async def _publish_loop(running: RunningNode, client: aiomqtt.Client) -> None:
    transport = running.transport
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    def settled(task: asyncio.Task) -> None:
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            running.metrics.drop(running.id, "publish-failed")

    while True:
        await transport.ready.wait()
        outbox = transport.outbox
        while outbox:
            topic, payload = outbox.popleft()
            await slots.acquire()
            asyncio.create_task(client.publish(topic, payload, qos=QOS)).add_done_callback(settled)
        transport.ready.clear()


async def _heartbeat(running: RunningNode) -> None:
    while True:
        running.heartbeat()
        await asyncio.sleep(HEARTBEAT_S)


async def serve(running: RunningNode, endpoint: Endpoint) -> None:
    """Keep ``running`` connected to its broker until cancelled; reconnect with back-off."""
    backoff = 0.1
    filters = topics.subscriptions(running.chain_id, running.role, running.id)
    while True:
        try:
            async with aiomqtt.Client(**endpoint.client_args(), identifier=f"{running.chain_id}/{running.id}",
                                      protocol=aiomqtt.ProtocolVersion.V5, keepalive=10,
                                      max_inflight_messages=MAX_IN_FLIGHT, timeout=10, logger=MQTT_LOG,
                                      max_queued_incoming_messages=MAX_INBOX,
                                      queue_type=_inbox_for(running)) as client:
                for topic_filter in filters:
                    await client.subscribe(topic_filter, options=SubscribeOptions(qos=QOS, noLocal=True))
                log.info(json.dumps({"node": running.id, "event": "connected",
                                     "broker": f"{endpoint.host}:{endpoint.port}"}))
                backoff = 0.1
                running.reconnected()
                running.inbox = client._queue  # read-only: the backlog (transport timers, debug_state)
                tasks = [asyncio.create_task(_publish_loop(running, client)),
                         asyncio.create_task(_heartbeat(running))]
                try:
                    async for message in client.messages:
                        running.deliver(message.topic.value, message.payload, admitted=True)
                finally:
                    for task in tasks:
                        task.cancel()
                    running.inbox = None
                    running.transport.inbox_lost()  # timers that waited on it fire now
        except Exception as exc:  # noqa: BLE001 - a lost broker or anything else: reconnect, never die silently
            level = logging.WARNING if isinstance(exc, aiomqtt.MqttError) else logging.ERROR
            log.log(level, json.dumps({"node": running.id, "event": "disconnected", "error": repr(exc)[:300],
                                       "retry_s": backoff}), exc_info=not isinstance(exc, aiomqtt.MqttError))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level and the event (structured logs)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        try:
            body = json.loads(message)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            body = {"message": message}
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(), **body}
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger("citychain")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


async def run_nodes(genesis_dir: Path, data_root: Path, ids: list[str], address: tuple[str, int],
                    behaviours: dict[str, str] | None = None, ca_file: str | None = None) -> int:
    """Run the nodes until SIGTERM or SIGINT; returns the process's exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Before the nodes open: SIGHUP's default would end the process, and a reload asked
    # for while they start finds the nodes opened so far (each read the file as it opened).
    nodes: list[RunningNode] = []
    loop.add_signal_handler(signal.SIGHUP, lambda: [r.crl.reload("sighup") for r in nodes if r.crl is not None])
    behaviours = behaviours or {}
    for node_id in ids:
        nodes.append(open_node(genesis_dir, data_root / node_id, node_id, behaviours.get(node_id), loop))
    tasks = []
    for running in nodes:
        user, password = read_credentials(data_root / running.id / "broker.json")
        endpoint = Endpoint(address[0], address[1], user, password, ca_file)
        tasks.append(asyncio.create_task(serve(running, endpoint)))
        log.info(json.dumps({"node": running.id, "event": "started", "height": running.node.ledger.height,
                             "pid": os.getpid(), "behaviour": behaviours.get(running.id)}))
    loop.add_signal_handler(signal.SIGUSR1, lambda: [log.info(json.dumps(r.debug_state())) for r in nodes])
    failed: list[StoreFailed] = []

    def fail(exc: StoreFailed) -> None:
        failed.append(exc)
        stop.set()

    for running in nodes:
        running.on_failure = fail
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if failed:
        for exc in failed:
            log.critical(json.dumps({"node": exc.node_id, "event": "store-failed", "error": str(exc)}))
        return 1
    for running in nodes:
        close = getattr(running.node.store, "close", None)
        if close is not None:
            close()
        log.info(json.dumps({"node": running.id, "event": "stopped", "height": running.node.ledger.height}))
    return 0
