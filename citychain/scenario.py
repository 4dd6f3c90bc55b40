"""Scenario files: schema, validation and loading.

Every error names the file, the field (as a dotted path) and what is allowed.
The schema is documented in docs/scenarios.md. The city-chain and fault
scenarios ship inside the package (``citychain/scenarios/``); a scenario is named
by a path or by a shipped one's short name (``taihu``, ``primary-crash``).
"""

from __future__ import annotations

import itertools
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from apps import REGISTRY as APP_REGISTRY

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$",
                            description="lower-case letters, digits and '-', at most 48")]
MIN_NODES, MAX_NODES = 4, 256
SHIPPED = Path(__file__).resolve().parent / "scenarios"
# Limits (docs/scenarios.md, "Limits"): a scenario is a small hand-written file, and a run a bounded
# stretch of virtual time; anything beyond is a mistake or an attack, refused before it costs memory or hours.
MAX_FILE_BYTES = 1 << 20  # 1 MB: the largest shipped scenario is under 5 kB
MAX_LIST = 1000  # entries in any one list (sites, organisations, links, mix, faults, byzantine)
MAX_MS = 3_600_000.0  # one hour of virtual time: any time, timeout or fault moment in milliseconds
MAX_US = 1_000_000.0  # a modelled CPU cost of at most one second per operation
MIN_VIEW_CHANGE_TIMEOUT_MS = 50.0  # below this, a backup suspects a primary before a block can commit


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ChainSpec(_Strict):
    id: Slug
    name: str = Field(min_length=1)
    description: str = ""


class Site(_Strict):
    id: Slug
    name: str = Field(min_length=1)


class Organisation(_Strict):
    id: Slug
    name: str = Field(min_length=1)
    site: Slug
    weight: int = Field(1, ge=1, description="share of the consensus nodes this organisation runs")


class Link(_Strict):
    between: tuple[Slug, Slug]
    ms: float = Field(ge=0, le=MAX_MS)


class LatencySpec(_Strict):
    local_ms: float = Field(0.2, ge=0, le=MAX_MS, description="one-way latency between nodes at the same site")
    default_ms: float = Field(2.0, ge=0, le=MAX_MS, description="one-way latency between sites without a link entry")
    links: list[Link] = Field(default_factory=list, max_length=MAX_LIST)


class NetworkSpec(_Strict):
    latency: LatencySpec = LatencySpec()
    jitter_ms: float = Field(0.1, ge=0, le=MAX_MS, description="uniform extra delay in [0, jitter_ms] per message")
    bandwidth_mbps: float = Field(1000.0, gt=0, le=1e7, description="each node's uplink")
    loss: float = Field(0.0, ge=0, lt=1, description="probability that a message is lost")
    drop_in_flight: bool = Field(False, description="when a partition or one-way cut starts, messages already "
                                 "on their way across it are lost too (as on a real network)")


class CpuSpec(_Strict):
    # Defaults measured with cryptography's Ed25519 on the development machine;
    # `citychain calibrate` measures the machine it runs on.
    sign_us: float = Field(33.0, ge=0, le=MAX_US)
    verify_us: float = Field(112.0, ge=0, le=MAX_US)
    execute_tx_us: float = Field(20.0, ge=0, le=MAX_US)
    request_queue_ms: float = Field(200.0, gt=0, le=MAX_MS, description="client requests are verified on their own lane; "
                                    "one that would wait longer than this is refused as 'overloaded'")


class ConsensusSpec(_Strict):
    block_size: int = Field(100, ge=1, le=10_000)
    batch_timeout_ms: float = Field(20.0, gt=0, le=MAX_MS)
    checkpoint_interval: int = Field(10, ge=1)
    watermark_window: int = Field(20, ge=1)
    sync_interval_ms: float = Field(1000.0, ge=0, le=MAX_MS, description="each node asks one peer this often for blocks "
                                    "beyond its height (anti-entropy); 0 turns it off")
    max_pending: int = Field(0, ge=0, description="requests a node holds waiting to be ordered; more are "
                             "refused as 'mempool-full' (0: 20 blocks' worth)")
    view_change_timeout_ms: float = Field(500.0, ge=MIN_VIEW_CHANGE_TIMEOUT_MS, le=MAX_MS, description="how long a backup waits for a request "
                                          "to execute before it suspects the primary; doubles per failed view change")
    max_clock_skew_ms: float = Field(1000.0, ge=1, le=MAX_MS, description="how far apart two honest nodes' calendar "
                                     "clocks may be: a block dated further ahead of a backup's clock is refused, and "
                                     "one further behind than this plus view_change_timeout_ms")

    @model_validator(mode="after")
    def _window_holds_a_checkpoint(self):
        if self.watermark_window < self.checkpoint_interval:
            raise ValueError("watermark_window must be >= checkpoint_interval (else the log never advances)")
        return self


class OpMix(_Strict):
    app: str
    op: str
    weight: int = Field(1, ge=1)


class WorkloadSpec(_Strict):
    clients: int = Field(20, ge=1, le=100_000)
    transactions: int = Field(1000, ge=1, le=10_000_000)
    rate_tps: float = Field(1000.0, gt=0, description="mean submission rate (Poisson arrivals)")
    mix: list[OpMix] = Field(default_factory=lambda: [OpMix(app="records", op="put")], min_length=1,
                             max_length=MAX_LIST)
    retry_ms: float = Field(1000.0, gt=0, le=MAX_MS, description="a client not answered by then sends its request to "
                            "every node (PBFT section 4.1); the wait doubles per retry")
    max_retries: int = Field(4, ge=0, le=64)

    @model_validator(mode="after")
    def _submissions_end_within_an_hour(self):
        if self.transactions / self.rate_tps > MAX_MS / 1000:
            raise ValueError(f"workload.rate_tps: {self.transactions} transactions at {self.rate_tps:g} tx/s take "
                             f"longer than {MAX_MS / 3_600_000:g} hour of virtual time; raise rate_tps to at "
                             f"least {self.transactions / (MAX_MS / 1000):g}")
        return self


class RunSpec(_Strict):
    drain_s: float = Field(30.0, gt=0, le=MAX_MS / 1000, description="virtual seconds allowed after the last submission")
    liveness_bound_s: float = Field(10.0, gt=0, le=MAX_MS / 1000, description="after the last fault heals, every transaction "
                                    "must be committed within this many virtual seconds")


BEHAVIOURS = ("silent", "silent-primary", "equivocate", "conflicting-votes", "forge-signatures", "replay",
              "delay", "lying-checkpoints", "fork", "selective", "split-new-view", "two-new-views",
              "forged-view-change", "withhold-blocks", "empty-blocks", "stale-blocks", "wrong-blocks")
Behaviour = Literal["silent", "silent-primary", "equivocate", "conflicting-votes", "forge-signatures", "replay",
                    "delay", "lying-checkpoints", "fork", "selective", "split-new-view", "two-new-views",
                    "forged-view-change", "withhold-blocks", "empty-blocks", "stale-blocks", "wrong-blocks"]
MESSAGE_KINDS = ("pre-prepare", "prepare", "commit", "checkpoint", "view-change", "new-view", "request")
NODE_REF = r"^(node-[0-9]+|primary)$"


class LinkChange(_Strict):
    between: tuple[Slug, Slug]
    latency_ms: float | None = Field(None, ge=0, le=MAX_MS)
    loss: float | None = Field(None, ge=0, le=1)


class OneWayCut(_Strict):
    """Messages from the ``from`` nodes to the ``to`` nodes are lost; the other way works."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    sources: list[str] = Field(alias="from", min_length=1, description="node or site ids")
    targets: list[str] = Field(alias="to", min_length=1, description="node or site ids")


ACTIONS = ("crash", "recover", "pause", "resume", "partition", "cut", "heal", "link")


class FaultEvent(_Strict):
    """One event of the fault timeline; exactly one action besides ``at_ms``."""

    at_ms: float = Field(ge=0, le=MAX_MS)
    crash: str | None = Field(None, pattern=NODE_REF)
    recover: str | None = Field(None, pattern=r"^node-[0-9]+$")
    pause: str | None = Field(None, pattern=NODE_REF)
    resume: str | None = Field(None, pattern=r"^node-[0-9]+$")
    partition: list[list[str]] | None = Field(None, min_length=2, description="groups of node or site ids")
    cut: OneWayCut | None = None
    heal: bool | None = None
    link: LinkChange | None = None

    @model_validator(mode="after")
    def _one_action(self):
        actions = [k for k in ACTIONS
                   if getattr(self, k) is not None]
        if len(actions) != 1:
            raise ValueError(f"each fault event has exactly one of {', '.join(ACTIONS)}; got {actions or 'none'}")
        return self

    @property
    def action(self) -> str:
        return next(k for k in ACTIONS
                    if getattr(self, k) is not None)


class ByzantineSpec(_Strict):
    node: str = Field(pattern=r"^node-[0-9]+$")
    behaviour: Behaviour
    delay_ms: float = Field(200.0, ge=0, le=MAX_MS, description="for behaviour 'delay'")
    targets: list[str] | None = Field(None, description="for selective, split-new-view and two-new-views: the "
                                      "peers (node-N) that get the first version; default: every other peer")
    kinds: list[Literal[MESSAGE_KINDS]] | None = Field(None, description="for selective: the message kinds sent "
                                                        "only to targets; default: every kind")


class Revocation(_Strict):
    """The chain's CA revokes a member's certificate from a virtual time on (its CRL)."""

    member: str = Field(pattern=r"^(node|observer|client)-[0-9]+$", description="node-N, observer-N or client-N")
    at_ms: float = Field(0.0, ge=0, le=MAX_MS, description="revoked from this virtual time on")


class RandomFaults(_Strict):
    """Faults drawn from the seed: the same seed gives the same schedule."""

    byzantine: int | Literal["f"] = 0
    crashes: int = Field(0, ge=0)
    behaviours: list[Behaviour] = Field(default_factory=lambda: [b for b in BEHAVIOURS if b != "fork"], min_length=1)
    window_ms: tuple[float, float] | None = Field(None, description="when crashes may start (default: the workload)")

    @model_validator(mode="after")
    def _window_in_order(self):
        if self.window_ms is not None:
            start, end = self.window_ms
            if not 0 <= start <= end <= MAX_MS:
                raise ValueError(f"random_faults.window_ms: [{start:g}, {end:g}] must be [START, END] with "
                                 f"0 <= START <= END <= {MAX_MS:.0f} (milliseconds of virtual time)")
        return self


class Scenario(_Strict):
    chain: ChainSpec
    seed: int = Field(1, ge=0)
    nodes: int = Field(ge=MIN_NODES, le=MAX_NODES, description="consensus nodes")
    observers: int = Field(0, ge=0, le=MAX_NODES, description="non-voting nodes that keep a verified copy")
    sites: list[Site] = Field(min_length=1, max_length=MAX_LIST)
    organisations: list[Organisation] = Field(min_length=1, max_length=MAX_LIST)
    network: NetworkSpec = NetworkSpec()
    cpu: CpuSpec = CpuSpec()
    consensus: ConsensusSpec = ConsensusSpec()
    workload: WorkloadSpec = WorkloadSpec()
    apps: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-app settings")
    run: RunSpec = RunSpec()
    faults: list[FaultEvent] = Field(default_factory=list, max_length=MAX_LIST)
    byzantine: list[ByzantineSpec] = Field(default_factory=list, max_length=MAX_LIST)
    random_faults: RandomFaults | None = None
    revocations: list[Revocation] = Field(default_factory=list, max_length=MAX_LIST)
    allow_byzantine_beyond_f_plus_1: bool = Field(False, description="opt in to more than f + 1 Byzantine nodes "
                                                  "(beyond what PBFT tolerates, and what a fork needs)")

    @model_validator(mode="after")
    def _cross_references(self):
        site_ids = [s.id for s in self.sites]
        _unique("sites", site_ids)
        _unique("organisations", [o.id for o in self.organisations])
        for i, org in enumerate(self.organisations):
            if org.site not in site_ids:
                raise ValueError(f"organisations[{i}].site: unknown site {org.site!r}; sites are {site_ids}")
        for i, link in enumerate(self.network.latency.links):
            for end in link.between:
                if end not in site_ids:
                    raise ValueError(f"network.latency.links[{i}].between: unknown site {end!r}; sites are {site_ids}")
        for i, item in enumerate(self.workload.mix):
            app = APP_REGISTRY.get(item.app)
            if app is None:
                raise ValueError(f"workload.mix[{i}].app: unknown app {item.app!r}; apps are {sorted(APP_REGISTRY)}")
            if item.op not in app.OPS:
                raise ValueError(f"workload.mix[{i}].op: {item.app} has no op {item.op!r}; ops are {list(app.OPS)}")
        org_ids = {o.id for o in self.organisations}
        for name in sorted(set(self.apps) | {m.app for m in self.workload.mix}):
            if name not in APP_REGISTRY:
                raise ValueError(f"apps.{name}: unknown app; apps are {sorted(APP_REGISTRY)}")
            try:
                app = APP_REGISTRY[name](self.apps.get(name))
            except ValueError as exc:
                raise ValueError(f"apps.{name}: {exc}") from None
            missing = app.organisations() - org_ids
            if missing:
                raise ValueError(f"apps.{name}: policies name organisations this chain does not have: "
                                 f"{sorted(missing)}; organisations are {sorted(org_ids)}")
        self._check_fault_references(site_ids)
        counts = {"node": self.nodes, "observer": self.observers, "client": self.workload.clients}
        for i, r in enumerate(self.revocations):
            kind, index = r.member.split("-")
            if int(index) >= counts[kind]:
                raise ValueError(f"revocations[{i}].member: {r.member} does not exist; there are {counts[kind]} "
                                 f"{kind}s ({kind}-0 .. {kind}-{counts[kind] - 1})")
        return self

    def _check_fault_references(self, site_ids: list[str]) -> None:
        def node_ok(where: str, ref: str) -> None:
            if ref != "primary" and int(ref.split("-")[1]) >= self.nodes:
                raise ValueError(f"{where}: {ref} does not exist; nodes are node-0 .. node-{self.nodes - 1}")

        for i, event in enumerate(self.faults):
            for action in ("crash", "recover", "pause", "resume"):
                ref = getattr(event, action)
                if ref is not None:
                    node_ok(f"faults[{i}].{action}", ref)
            groups = {f"partition[{g}]": group for g, group in enumerate(event.partition or ())}
            if event.cut is not None:
                groups.update({"cut.from": event.cut.sources, "cut.to": event.cut.targets})
            for where, group in groups.items():
                for ref in group:
                    if ref in site_ids:
                        continue
                    if not ref.startswith("node-") or not ref[5:].isdigit():
                        raise ValueError(f"faults[{i}].{where}: {ref!r} is neither a node "
                                         f"(node-N) nor a site; sites are {site_ids}")
                    node_ok(f"faults[{i}].{where}", ref)
            if event.link is not None:
                for end in event.link.between:
                    if end not in site_ids:
                        raise ValueError(f"faults[{i}].link.between: unknown site {end!r}; sites are {site_ids}")
        seen = set()
        for i, spec in enumerate(self.byzantine):
            node_ok(f"byzantine[{i}].node", spec.node)
            for t, ref in enumerate(spec.targets or ()):
                if not ref.startswith("node-") or not ref[5:].isdigit():
                    raise ValueError(f"byzantine[{i}].targets[{t}]: {ref!r} is not a node (node-N)")
                node_ok(f"byzantine[{i}].targets[{t}]", ref)
            index = int(spec.node.split("-")[1])
            if index in seen:
                raise ValueError(f"byzantine[{i}].node: {spec.node} is listed twice")
            seen.add(index)
        f = (self.nodes - 1) // 3
        rf = self.random_faults
        byzantine = len(self.byzantine) + (0 if rf is None else f if rf.byzantine == "f" else max(rf.byzantine, 0))
        if byzantine >= self.nodes:
            raise ValueError(f"byzantine: {byzantine} Byzantine nodes of {self.nodes}: at least one node must be "
                             "honest (safety and liveness are judged on the honest nodes)")
        if byzantine > f + 1 and not self.allow_byzantine_beyond_f_plus_1:
            raise ValueError(f"byzantine: {byzantine} Byzantine nodes, but n = {self.nodes} tolerates f = {f}, and "
                             f"f + 1 = {f + 1} already shows a fork; set allow_byzantine_beyond_f_plus_1: true to "
                             "run more")
        if rf is not None:
            f = (self.nodes - 1) // 3
            byz = f if rf.byzantine == "f" else rf.byzantine
            if byz < 0 or byz + rf.crashes + len(self.byzantine) > self.nodes - 1:
                raise ValueError(f"random_faults: {byz} Byzantine and {rf.crashes} crashes do not fit in "
                                 f"{self.nodes} nodes")

    def with_overrides(self, *, nodes: int | None = None, seed: int | None = None) -> "Scenario":
        data = self.model_dump()
        if nodes is not None:
            data["nodes"] = nodes
        if seed is not None:
            data["seed"] = seed
        return Scenario.model_validate(data)


def _unique(field: str, ids: list[str]) -> None:
    seen = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise ValueError(f"{field}[{i}].id: {ident!r} appears twice; ids must be unique")
        seen.add(ident)


def _path(loc: tuple) -> str:
    """One path style for every message: ``network.latency.links[0].ms``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_PATH_PREFIX = re.compile(r"^([A-Za-z_][\w-]*(?:\[\d+\]|\.[A-Za-z_][\w-]*)*)(?=[:\s])")


def _loc_of(path: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path))


def _describe(err: dict) -> tuple[tuple, str]:
    """(where, message): the field's location and one line naming it and what is allowed."""
    loc = tuple(err["loc"])
    where = _path(loc)
    msg = err["msg"]
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        named = _PATH_PREFIX.match(msg)
        if named and (not where or named.group(1).startswith(where)):
            return _loc_of(named.group(1)), msg  # cross-field checks name their own fields
        if not where:
            return (), msg
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        allowed = _allowed_fields(parent)
        msg = f"unknown field; allowed here: {', '.join(allowed)}" if allowed else "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "finite_number":
        msg = "must be a finite number (not .inf or .nan)"
    return loc, f"{where}: {msg}"


def _allowed_fields(path: tuple) -> list[str]:
    model: Any = Scenario
    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return sorted(getattr(model, "model_fields", {}))


def parse_scenario(data: Any, source: str = "<scenario>", marks: list | None = None) -> Scenario:
    """Validate ``data``; ``marks`` (from reading the file) add the line of each field in error."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the file must hold a mapping (key: value lines), got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc, text = _describe(e)
            line = _line_of(marks or [], loc)
            lines.append(text if line is None else _with_line(text, line, source))
        raise ScenarioError(f"{source}: invalid scenario:\n  " + "\n  ".join(lines)) from None


def _with_line(text: str, line: tuple[str, int], source: str) -> str:
    path, number = line
    at = f"line {number}" if path == source else f"{path} line {number}"
    return f"{text} ({at})"


def _line_of(marks: list, loc: tuple) -> tuple[str, int] | None:
    """The file and line (1-based) of the deepest node of ``loc`` found: the file that
    names the field most precisely, the including file first (its values win the merge)."""
    best, best_depth = None, -1
    for path, root in marks:
        node, depth = root, 0
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                child = next((v for k, v in node.value
                              if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node, depth = child, depth + 1
        if depth > best_depth and node is not None and (depth > 0 or not loc):
            best, best_depth = (path, node.start_mark.line + 1), depth
    return best


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (the last would silently win)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (lines {first} and {key_node.start_mark.line + 1}); "
                    "give each key once", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _merge(base: dict, over: dict) -> dict:
    """Mappings merge key by key; anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_FILE_BYTES, in UTF-8."""
    try:
        with open(path, "rb") as fh:
            if not os.path.isfile(path) or not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ScenarioError(f"{path}: not a regular file; a scenario is a YAML file")
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MB, the limit for a scenario file "
                            "(docs/scenarios.md, \"Limits\")")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}, line {line}); a scenario is a YAML "
                            "file in UTF-8") from None


def _read(path: Path, seen: tuple[Path, ...] = (), marks: list | None = None) -> Any:
    """The file's data with every ``base:`` merged in; ``marks`` collects (file, YAML node tree)."""
    text = _text(path)
    loader = _Loader(text)
    loader.name = str(path)  # marks in YAML errors name the file
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if marks is not None and root is not None:
        marks.append((str(path), root))
    if isinstance(data, dict) and "base" in data:
        # A scenario may start from another (a city chain) and change only what differs.
        base_ref = data.pop("base")
        if not isinstance(base_ref, str):
            raise ScenarioError(f"{path}: base: must be a path to another scenario file")
        base_path = (path.parent / base_ref)
        if not base_path.is_file():
            base_path = _shipped(base_ref) or base_path  # `base: taihu` names a shipped scenario
        if not base_path.exists():
            raise ScenarioError(f"{path}: base: {base_ref}: no such file ({base_path}), nor a shipped scenario of "
                                "that name (`citychain scenarios` lists them)")
        base_path = base_path.resolve()
        if base_path in seen:
            raise ScenarioError(f"{path}: base: {base_ref} includes itself")
        base = _read(base_path, seen + (base_path,), marks)
        if not isinstance(base, dict):
            raise ScenarioError(f"{base_path}: the file must hold a mapping (it is the base: of {path})")
        data = _merge(base, data)
    return data


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios that ship with citychain by short name: the city chains, the faults, then the lessons."""
    files = sorted(SHIPPED.glob("*.yaml")) + sorted(SHIPPED.glob("faults/*.yaml")) + sorted(
        SHIPPED.glob("teaching/*.yaml"))
    return {p.stem: p for p in files}


def _shipped(name: str) -> Path | None:
    return shipped_scenarios().get(name.removesuffix(".yaml"))


def resolve_scenario(ref: str | Path) -> Path:
    """The file a scenario reference names: an existing file first, else the shipped
    scenario of that short name, else the path as given (reading it reports why not)."""
    path = Path(ref)
    if path.is_file():
        return path
    return _shipped(str(ref)) or path


def load_scenario(ref: str | Path) -> Scenario:
    """Load a scenario from a file, or a shipped one by its short name (``taihu``)."""
    path = resolve_scenario(ref)
    if not path.exists():
        raise ScenarioError(f"{path}: cannot read scenario: no such file, nor a shipped scenario of that name "
                            "(`citychain scenarios` lists them)")
    marks: list = []
    return parse_scenario(_read(path, (path.resolve(),), marks), str(path), marks)


def summary_line(path: Path) -> str:
    """The first sentence of a scenario file's leading comment, on one line."""
    lines = itertools.takewhile(lambda line: line.startswith("#"), _text(path).splitlines())
    text = " ".join(" ".join(line.lstrip("#").split()) for line in lines)
    return re.split(r"(?<=\.)\s", text, maxsplit=1)[0]


def load_with_overrides(ref: str | Path, nodes: int | None = None, seed: int | None = None) -> Scenario:
    """``load_scenario``, then the command line's ``--nodes``/``--seed``; ScenarioError names both."""
    scenario = load_scenario(ref)
    if nodes is None and seed is None:
        return scenario
    given = " ".join(f"--{k} {v}" for k, v in (("nodes", nodes), ("seed", seed)) if v is not None)
    try:
        return scenario.with_overrides(nodes=nodes, seed=seed)
    except ValidationError as exc:  # a field that held for the file's own values: name it, no pydantic dump
        lines = [_describe(e)[1] for e in exc.errors()]
        raise ScenarioError(f"{ref}: with {given}: " + "; ".join(lines)) from None
