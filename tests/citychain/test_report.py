"""report.html, the step-through page: self-contained, and its stepper checked in headless
Chromium (Debian's chromium package; `make test` installs it; never skipped)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from citychain.cli import main
from citychain.sim.trace import Trace
from citychain.teach import report as rep

pytestmark = pytest.mark.xdist_group("report")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def chromium() -> str:
    path = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if not path:
        pytest.fail("Debian's chromium is not installed, and the report's test needs it: run `make chromium` "
                    "or `apt-get install -y chromium` (as root), then run the tests again")
    return path


def browse(page: Path, query: str, tmp: Path, *extra: str) -> tuple[str, str]:
    """Open ``page`` from a file:// URL, let its script run, return (the DOM, stderr)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
           "--virtual-time-budget=5000", *extra, page.resolve().as_uri() + query]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def selftest(page: Path, query: str, tmp: Path) -> dict:
    dom, err = browse(page, query + ("&" if query else "?") + "selftest=1", tmp, "--dump-dom")
    found = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.S)
    assert found, f"the page's self-check did not run: {dom[-1500:]}\n{err[-1500:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert result["errors"] == [], result["errors"]
    assert "Uncaught" not in err, err[-2000:]
    return result


@pytest.fixture(scope="module")
def normal4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "normal-4"
    res = CliRunner().invoke(main, ["trace", "normal-4", "--block", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def vc4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "vc-4"
    res = CliRunner().invoke(main, ["run", "view-change-4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def oracle(trace: Trace, step: int) -> dict:
    lo, hi, _ = rep.choose_window(trace)
    return rep.state_at(trace, lo, hi, step)["nodes"]


def same_state(page_state: dict, expected: dict) -> None:
    for node, want in expected.items():
        got = page_state[node]
        for key in ("phase", "seq", "view", "low", "high", "log", "status", "executed"):
            assert got[key] == want[key], (node, key, got, want)


def test_report_is_one_self_contained_file(normal4):
    text = (normal4 / "report.html").read_text()
    assert "://" not in text  # no http(s) resource at all: scripts, styles, fonts and images are inline
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=[\"'](?!data:)", text)
    assert "@import" not in text and "@font-face" not in text
    assert text.count("data:image/png;base64,") == 2  # the block's diagram and replica-state.png
    assert 'id="trace-data"' in text and "Step through the run" in text
    assert "quorum q = 3" in text


def test_stepper_shows_node01_committed_and_steps_back(normal4, tmp_path):
    trace = Trace.read(normal4 / "trace.jsonl")
    first = next(e for e in trace.events if e["ev"] == "committed-local" and e["node"] == "node-01")
    r = selftest(normal4 / "report.html", f"?at={first['i']}", tmp_path)
    assert r["event"]["i"] == first["i"] and r["event"]["ev"] == "committed-local"
    assert "node-01 COMMITTED seq 1: 3 commits" in r["now"]
    assert r["state"]["node-01"]["phase"] == "committed"
    assert r["state"]["node-01"]["cell"] == "seq 1: committed"
    same_state(r["state"], oracle(trace, r["start"]))
    # five clicks on "one step forward" change what is shown; five on "one step back" restore it
    assert r["forward_steps"] == 5 and r["forward_differs"]
    same_state(r["forward_state"], oracle(trace, r["start"] + 5))
    assert r["back_same"]
    assert r["scrub_end"] == r["steps"] and r["scrub_back"] == r["start"]


def test_the_page_starts_before_anything_happened(normal4, tmp_path):
    r = selftest(normal4 / "report.html", "", tmp_path)
    assert r["start"] == 0
    assert all(s["phase"] == "idle" and s["executed"] == 0 for s in r["state"].values())
    assert r["forward_differs"] or r["forward_steps"] == 5


def test_run_out_writes_the_page_and_it_follows_a_view_change(vc4, tmp_path):
    page = vc4 / "report.html"
    assert page.exists() and "://" not in page.read_text()
    trace = Trace.read(vc4 / "trace.jsonl")
    installed = next(e for e in trace.events if e["ev"] == "view-installed" and e["node"] == "node-02")
    r = selftest(page, f"?at={installed['i']}", tmp_path)
    assert r["state"]["node-02"]["view"] == 1
    assert r["state"]["node-00"]["status"] == "down"  # the crashed primary
    same_state(r["state"], oracle(trace, r["start"]))
    r = selftest(page, "?step=3", tmp_path)
    same_state(r["state"], oracle(trace, 3))


def test_screenshot_shows_the_page(normal4, tmp_path):
    shot = tmp_path / "report.png"
    _dom, err = browse(normal4 / "report.html", "?step=12", tmp_path, "--window-size=1400,900",
                       f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 30_000, err[-1500:]


def test_no_trace_still_writes_a_page(tmp_path):
    out = tmp_path / "nt"
    res = CliRunner().invoke(main, ["run", "normal-4", "--out", str(out), "--no-trace"])
    assert res.exit_code == 0, res.output
    text = (out / "report.html").read_text()
    assert "--no-trace" in text and "trace-data" not in text and "Summary" in text


def test_report_window(tmp_path, monkeypatch):
    assert rep.parse_window("100:250.5") == (100.0, 250.5)
    assert rep.parse_window("1200:") == (1200.0, None)
    for bad in ("100", "a:b", "5:1"):
        with pytest.raises(rep.WindowError):
            rep.parse_window(bad)
    out = tmp_path / "w"
    res = CliRunner().invoke(main, ["trace", "view-change-4", "--view-change", "1", "--out", str(out),
                                    "--report-window", "290:400"])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert "--report-window (290 ms to 400 ms)" in page
    data = json.loads(re.search(r'id="trace-data">(.*?)</script>', page, re.S).group(1))
    assert data["events"] and all(290e6 <= e["t"] <= 400e6 for e in data["events"])
    assert data["init"]["nodes"]["node-00"]["executed"] > 0  # the state at the window's start was replayed
    res = CliRunner().invoke(main, ["trace", "normal-4", "--out", str(tmp_path / "x"), "--report-window", "9"])
    assert res.exit_code == 2 and "START_MS:END_MS" in res.output


def test_default_window_of_a_large_run_is_around_the_first_view_change(vc4, monkeypatch):
    trace = Trace.read(vc4 / "trace.jsonl")
    monkeypatch.setattr(rep, "WINDOW_EVENTS", 500)
    lo, hi, note = rep.choose_window(trace)
    first_vc = next(e for e in trace.events if e["ev"] == "view-change-started")
    assert hi - lo == 500 and lo < first_vc["i"] < hi
    assert "around the first view change" in note
