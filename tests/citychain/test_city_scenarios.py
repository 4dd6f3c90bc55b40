"""The six city-chain scenarios: agreement, every valid transaction committed, the invalid
ones refused with reasons, and the same app state (state root) on every honest node."""

import json

import pytest
from click.testing import CliRunner

from citychain.cli import main
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize
from tests.conftest import SCENARIOS

CITIES = {"sichuan": "Sichuan Chain", "henan": "Henan Chain", "chongqing": "Mountain City Chain (Chongqing)",
          "zhejiang": "Zhejiang Chain", "guiyang": "Sovereign Chain (Guiyang)", "taihu": "Taihu Chain (Wuxi)"}


@pytest.mark.parametrize("city", sorted(CITIES))
def test_city_scenario_runs_to_agreement_with_its_apps(city):
    scenario = load_scenario(SCENARIOS / f"{city}.yaml")
    assert scenario.chain.name == CITIES[city] and 20 <= scenario.nodes <= 60
    run = simulate(scenario)
    s = summarize(run, city)
    assert s["agreement"] and s["safety_violations"] == 0
    assert s["committed_tx"] == s["submitted_tx"] == scenario.workload.transactions
    roots = {node.executor.state.root() for node in run.nodes.values()}
    assert len(roots) == 1  # every node holds the same world state
    apps_used = {m.app for m in scenario.workload.mix}
    state = next(iter(run.nodes.values())).executor.state
    assert all(any(True for _ in state.items(app + "/")) for app in apps_used)
    # The deliberately invalid transactions were refused, each with a reason.
    assert 0 < s["rejected_tx"] < 0.15 * s["committed_tx"]
    assert all(v["example"] for v in s["rejections"].values())


def test_node_counts_vary_across_the_six():
    counts = {city: load_scenario(SCENARIOS / f"{city}.yaml").nodes for city in CITIES}
    assert len(set(counts.values())) >= 5 and min(counts.values()) == 20 and max(counts.values()) == 60


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = {}
    for city in ("henan", "chongqing", "zhejiang"):
        path = tmp_path_factory.mktemp(city)
        result = CliRunner().invoke(main, ["run", str(SCENARIOS / f"{city}.yaml"), "--out", str(path), "--json",
                                           "--nodes", "7"])
        assert result.exit_code == 0, result.output
        out[city] = path
    return out


def ask(out, *args):
    result = CliRunner().invoke(main, ["query", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_query_traces_a_batch_from_farm_to_shelf(exported):
    listing = ask(exported["henan"], "traceability", "batch/")
    assert listing["total_matches"] > 10
    batch = ask(exported["henan"], "traceability", listing["matches"][0])["value"]
    assert batch["history"][0]["event"] == "registered"
    assert batch["history"][0]["org"] in ("nanyang-farms", "agriculture")


def test_query_verifies_a_document(exported, tmp_path):
    listing = ask(exported["henan"], "evidence", "doc/")
    digest = listing["matches"][0].split("/")[1]
    record = ask(exported["henan"], "evidence", f"doc/{digest}")["value"]
    assert record["sha256"] == digest and record["seq"] >= 1
    forged = tmp_path / "forged.txt"
    forged.write_text("not the anchored document")
    answer = ask(exported["henan"], "evidence", "--file", str(forged))
    assert answer["verified"] is False and "never anchored" in answer["explanation"]


def test_query_lists_who_accessed_a_fund_record(exported):
    listing = ask(exported["chongqing"], "provident_fund", "access/")
    assert listing["total_matches"] > 0
    trail = ask(exported["chongqing"], "provident_fund", listing["matches"][0])["value"]
    assert all({"org", "by", "height", "at"} <= set(entry) for entry in trail)


def test_query_shows_a_dataset_and_its_readers(exported):
    listing = ask(exported["zhejiang"], "data_sharing", "dataset/")
    dataset = ask(exported["zhejiang"], "data_sharing", listing["matches"][0])["value"]
    assert dataset["owner"] in dataset["keys"] and len(dataset["digest"]) == 64


def test_query_shows_a_licence_and_its_history(exported):
    listing = ask(exported["henan"], "licences", "licence/")
    licence = ask(exported["henan"], "licences", listing["matches"][0])["value"]
    assert licence["history"][0]["op"] == "issue" and licence["status"] in ("active", "suspended", "revoked")


def test_query_answers_the_same_on_every_node(exported):
    a = ask(exported["chongqing"], "provident_fund", "account/", "--node", "node-00")
    b = ask(exported["chongqing"], "provident_fund", "account/", "--node", "node-06")
    assert a["state_root"] == b["state_root"] and a["matches"] == b["matches"]


def test_query_errors(exported):
    result = CliRunner().invoke(main, ["query", str(exported["henan"]), "lottery", "x"])
    assert result.exit_code == 2 and "unknown app 'lottery'" in result.output
    result = CliRunner().invoke(main, ["query", str(exported["henan"]), "licences", "x", "--node", "node-99"])
    assert result.exit_code == 2 and "no ledger for node-99" in result.output


def test_observers_keep_a_verified_copy_without_voting():
    scenario = load_scenario(SCENARIOS / "chongqing.yaml")
    assert scenario.observers == 2
    run = simulate(scenario)
    observers = [n for n in run.nodes if n.startswith("observer-")]
    assert len(observers) == 2 and all(o not in run.genesis.replicas for o in observers)
    voters = {node.executor.state.root() for n, node in run.nodes.items() if n in run.genesis.replicas}
    for o in observers:
        node = run.nodes[o]
        assert node.syncer.fetched_blocks == node.ledger.height > 0  # every block pulled and checked
        assert {node.executor.state.root()} == voters
        assert run.membership.role_of(o) == "observer"
    # Consensus broadcasts go to voters only: no observer ever dropped one.
    assert not any(run.metrics.drops.get(o) for o in observers)


def test_an_observer_cannot_vote(tmp_path):
    from citychain.genesis import build_genesis
    from consensus.messages import Prepare
    from node.signing import Signer
    g = build_genesis(load_scenario(SCENARIOS / "chongqing.yaml").with_overrides(nodes=4))
    ident = g.identities["observer-00"]
    vote = Signer(ident.id, ident.key, g.chain_id).sign(Prepare(0, 1, "ab" * 32))
    assert g.membership().authenticate(vote) == "unauthorised-role"
