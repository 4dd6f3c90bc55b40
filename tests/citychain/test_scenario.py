"""A bad scenario field gets an error naming the file, the field and what is allowed."""

import textwrap

import pytest

from citychain.scenario import ScenarioError, load_scenario


def write(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    return path


BASE = """
chain: {id: demo, name: Demo}
nodes: 4
sites: [{id: a, name: A}]
organisations: [{id: o, name: O, site: a}]
"""


def error_of(tmp_path, text):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    return str(err.value)


def test_the_base_is_valid(tmp_path):
    assert load_scenario(write(tmp_path, BASE)).nodes == 4


@pytest.mark.parametrize("extra,field,allowed", [
    ("consensus: {block_size: 0}", "consensus.block_size", "greater than or equal to 1"),
    ("network: {loss: 1.5}", "network.loss", "less than 1"),
    ("consensus: {blocksize: 10}", "consensus.blocksize", "allowed here: batch_timeout_ms, block_size"),
    ("workload: {mix: [{app: lottery, op: draw}]}", "workload.mix[0].app", "apps are ['data_sharing', 'evidence'"),
    ("workload: {mix: [{app: records, op: draw}]}", "workload.mix[0].op", "ops are ['put', 'delete']"),
    ("consensus: {checkpoint_interval: 30, watermark_window: 10}", "watermark_window", "must be >= checkpoint_interval"),
])
def test_errors_name_file_field_and_what_is_allowed(tmp_path, extra, field, allowed):
    message = error_of(tmp_path, BASE + extra + "\n")
    assert "bad.yaml" in message and field in message and allowed in message


def test_app_policies_must_name_real_organisations(tmp_path):
    message = error_of(tmp_path, BASE + "apps: {evidence: {anchorers: 'any of [court]'}}\n"
                       "workload: {mix: [{app: evidence, op: anchor}]}\n")
    assert "apps.evidence: policies name organisations this chain does not have: ['court', 'notary', 'police']" in message
    message = error_of(tmp_path, BASE + "apps: {evidence: {anchorers: 'most of [o]'}}\n")
    assert "apps.evidence: anchorers: policy 'most of [o]' is not" in message


def test_too_few_nodes(tmp_path):
    message = error_of(tmp_path, BASE.replace("nodes: 4", "nodes: 3"))
    assert "nodes: Input should be greater than or equal to 4" in message


def test_unknown_site_reference(tmp_path):
    message = error_of(tmp_path, BASE.replace("site: a}", "site: zz}"))
    assert "organisations[0].site: unknown site 'zz'; sites are ['a']" in message


def test_missing_field_and_not_yaml(tmp_path):
    assert "chain: required field is missing" in error_of(tmp_path, "nodes: 4\nsites: []\norganisations: []\n")
    assert "not valid YAML" in error_of(tmp_path, "chain: [unclosed\n")
    assert "must hold a mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")
