"""The docs say what the code does, no more and no less: every drop reason, scenario
field, genesis field and exit code the code has is documented, and the docs name none
it does not have."""

import re

import pytest
from pydantic import BaseModel

from citychain import exits
from citychain.genesis import build_genesis
from citychain.layout import place_nodes
from citychain.scenario import Scenario, load_scenario
from consensus.quorum import quorum
from tests.conftest import ROOT

DOCS = ROOT / "docs"
CODE = sorted((ROOT / "consensus").rglob("*.py")) + sorted((ROOT / "node").rglob("*.py"))
REASON_IN_CODE = [r'Drop\(f?"([a-z][a-z-]*)', r'else "([a-z]+-[a-z-]+)"', r'metrics\.drop\([^,]+, f?"([a-z][a-z-]*)',
                  r'MalformedMessage\("([a-z][a-z-]*)"', r'return "([a-z]+-[a-z-]+)"', r'return t, f"([a-z][a-z-]*)']


def drop_section() -> str:
    text = (DOCS / "messages.md").read_text()
    return text[text.index("## Why a message is dropped"):text.index("## View changes")]


def test_every_drop_reason_the_code_counts_is_documented_and_no_other():
    code = "\n".join(p.read_text() for p in CODE)
    counted = {r for pattern in REASON_IN_CODE for r in re.findall(pattern, code)}
    table = [line for line in drop_section().splitlines() if line.startswith("| `")]
    documented = {r for line in table for r in re.findall(r"`([a-z][a-z-]*)", line.split("|")[1])}
    assert {"overloaded", "mempool-full", "unexpected-message", "bad-block-hash"} <= counted
    assert counted - documented == set(), "counted by the code, missing from docs/messages.md"
    assert {r for r in documented if f'"{r}' not in code} == set(), "documented, but the code never counts it"


def fields(model: type[BaseModel], prefix: str = ""):
    """(dotted path, is a list of models) for every field of a scenario, nested."""
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        ann = info.annotation
        args = getattr(ann, "__args__", ())
        inner = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        listed = getattr(ann, "__origin__", None) is list
        if inner is None:
            yield path, None
        elif listed:
            yield path + "[]", inner
        elif type(None) in args:  # an optional block (random_faults): one row names its fields
            yield path, inner
        else:
            yield from fields(inner, path + ".")


def test_every_scenario_field_is_documented():
    text = (DOCS / "scenarios.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in text.splitlines() if line.startswith("| `")}
    missing = []
    for path, item in fields(Scenario):
        if path not in rows:
            missing.append(path)
        elif item is not None:  # a list of objects, or random_faults: its fields are named in its row or below
            for name, info in item.model_fields.items():
                if not re.search(rf"\b{info.alias or name}\b", text):
                    missing.append(f"{path}.{name}")
    assert missing == [], "scenario fields missing from docs/scenarios.md"
    assert {"cpu.request_queue_ms", "consensus.sync_interval_ms", "consensus.max_pending"} <= set(rows)


def test_every_genesis_field_is_documented():
    doc = build_genesis(load_scenario("chongqing")).doc
    text = (DOCS / "ledger.md").read_text()
    section = text[text.index("## genesis.json"):]
    table = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    assert set(doc) == table
    for name in doc["consensus"]:
        assert f"`{name}`" in section
    for entry in ("organisations", "members", "clients"):
        for key in doc[entry][0]:
            assert f'"{key}"' in section, (entry, key)


def test_every_exit_code_is_documented():
    audit = (DOCS / "audit.md").read_text()
    readme = (ROOT / "README.md").read_text()
    codes = {v for k, v in vars(exits).items() if k.isupper() and isinstance(v, int)}
    assert codes == {0, 1, 2, 3, 4} == set(exits.NAMES)
    rows = {int(line.split("|")[1]) for line in audit.splitlines() if re.match(r"^\| [0-9] \|", line)}
    assert rows == codes
    section = readme[readme.index("**Exit codes**"):readme.index("## Layout")]
    for code in codes:
        assert re.search(rf"\b{code} ", section), code
    for code, name in exits.NAMES.items():
        if code != exits.BAD_INPUT:  # a report is never "bad-input": that is an error before any report
            assert f"`{name}` {code}" in audit


def test_the_partition_heal_description_counts_what_the_run_cuts():
    path = ROOT / "citychain" / "scenarios" / "faults" / "partition-heal.yaml"
    scenario = load_scenario(path)
    cut = sum(1 for n in place_nodes(scenario) if n.site == "liangxi")
    q = quorum(scenario.nodes)
    assert cut < q and scenario.nodes - cut < q  # neither side has a quorum
    comment = path.read_text()
    assert f"({cut} of {scenario.nodes} nodes)" in comment and f"({cut} or {scenario.nodes - cut} nodes)" in comment
    assert f"quorum ({q})" in comment
    readme = (ROOT / "citychain" / "scenarios" / "README.md").read_text()
    assert f"Liangxi District ({cut} of {scenario.nodes} nodes)" in readme


@pytest.mark.parametrize("doc", sorted(p.name for p in DOCS.glob("*.md")))
def test_docs_name_only_files_that_exist(doc):
    text = (DOCS / doc).read_text()
    for ref in re.findall(r"\b((?:docs|citychain|node|consensus|apps|tests)/[a-z_/]+\.(?:md|py))", text):
        assert (ROOT / ref).exists(), f"{doc} names {ref}"
