"""`citychain cluster compare` on a real 4-node cluster (a real Mosquitto, never skipped):
both sides in the JSON with the same figures, a verdict and reasons per metric, and an
HTML report that needs nothing from the network."""

import json
import re
import subprocess
import sys

import pytest

from citychain.cluster.compare import VARIANT_MEASURED, VARIANT_SHARED
from citychain.cluster.compare_report import METRICS

pytestmark = pytest.mark.xdist_group("cluster")

SIDE_KEYS = {key for key, _ in METRICS} | {
    "send_rate_tps", "blocks", "committed_tx", "tx_per_block", "ms_per_block", "publishes_per_block",
    "status_notices_per_block", "messages_per_block_by_type", "bytes_per_block_by_type", "view_changes", "retries",
    "cpu_s_per_node", "cpu_us_per_message"}


def citychain(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citychain", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def compared(mosquitto, tmp_path_factory):
    """A 4-node taihu cluster compared with the simulator over a small load; always brought down."""
    root = tmp_path_factory.mktemp("compare")
    directory, out = root / "cluster", root / "report"
    up = citychain("cluster", "up", "taihu", "--nodes", "4", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stderr
        done = citychain("cluster", "compare", "--dir", str(directory), "--transactions", "60", "--rate", "100",
                         "--out", str(out), "--json")
    finally:
        down = citychain("cluster", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), out


def test_the_json_holds_both_sides_with_the_same_figures(compared):
    doc, out = compared
    assert json.loads((out / "compare.json").read_text()) == doc
    assert doc["nodes"] == 4 and doc["transactions"] == 60 and doc["rate_tps"] == 100
    for side in ("cluster", "simulator"):
        assert SIDE_KEYS <= set(doc[side]), f"{side} lacks {sorted(SIDE_KEYS - set(doc[side]))}"
        assert doc[side]["committed_tx"] == 60
        assert doc[side]["throughput_tps"] > 0 and doc[side]["p50_ms"] > 0
        assert doc[side]["p50_ms"] <= doc[side]["p95_ms"] <= doc[side]["p99_ms"]
        assert {"pre-prepare", "prepare", "commit"} <= set(doc[side]["messages_per_block_by_type"])
    assert doc["cluster"]["status_notices_per_block"] > 0 and doc["simulator"]["status_notices_per_block"] == 0
    assert {VARIANT_MEASURED, VARIANT_SHARED} <= set(doc["variants"])
    assert all(SIDE_KEYS <= set(v) and v["cpu_scale"] >= 1 for v in doc["variants"].values())


def test_the_simulator_is_set_up_from_what_was_measured(compared):
    doc, _ = compared
    cpu, broker = doc["calibration"]["cpu"], doc["calibration"]["broker"]
    assert cpu["sign_us"] > 0 and cpu["verify_us"] > 0 and cpu["execute_tx_us"] > 0
    assert 0 < broker["one_way_ms"]["p10"] <= broker["one_way_ms"]["p50"]
    assert broker["one_way_under_load_ms"]["samples"] > 0 and broker["bandwidth_mbps"] > 0
    settings = doc["simulator_settings"]
    assert settings["cpu.verify_us"] == cpu["verify_us"] and settings["cpu.sign_us"] == cpu["sign_us"]
    assert settings["network.latency.default_ms"] == settings["network.latency.local_ms"] == round(
        broker["one_way_ms"]["p10"], 4)
    assert doc["calibration"]["storage_commit_ms"] > 0


def test_every_metric_has_a_verdict_and_reasons(compared):
    doc, _ = compared
    for key, _ in METRICS:
        verdict = doc["differences"][key]
        assert verdict["verdict"] in ("agree", "expected", "check"), key
        assert verdict["why"] and all(isinstance(line, str) and line for line in verdict["why"]), key
        assert verdict["cluster"] == doc["cluster"][key] and verdict["simulator"] == doc["simulator"][key]
    ceiling = doc["ceiling"]["full_blocks"]
    assert ceiling["n"] == 4 and ceiling["max_tps"] > ceiling["max_tps_with_execution"] > 0


def test_the_html_report_is_self_contained(compared):
    _, out = compared
    page = (out / "compare.html").read_text()
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in page
    assert not re.search(r"https?://", page), "the report must not fetch anything"
    assert not re.search(r"<(script|link|iframe)\b", page, re.I)
    assert not re.search(r"(src|href)\s*=\s*[\"'](?!data:|#)", page, re.I)
    assert "@import" not in page and "url(" not in page
    for _, label in METRICS:
        assert label in page
