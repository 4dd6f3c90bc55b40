"""The garbage collector quieted during a run (citychain/sim/collector.py): the run is the
same byte for byte however often the collector runs, and the process is left as it was."""

import gc
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest

import citychain.sim.run as sim_run
from citychain.export import write_run
from citychain.scenario import load_scenario
from citychain.sim.collector import FIRST_THRESHOLD, quiet_collector
from citychain.summary import summarize

SCENARIOS = Path(__file__).resolve().parents[2] / "citychain" / "scenarios"


def _small(name: str, transactions: int = 60):
    scenario = load_scenario(SCENARIOS / name)
    data = scenario.model_dump()
    data["workload"]["transactions"] = transactions
    return type(scenario).model_validate(data)


@contextmanager
def _eager_collector():
    """The other way: a young pass every 500 allocations, a full pass every fourth."""
    thresholds = gc.get_threshold()
    gc.set_threshold(500, 2, 2)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _export(monkeypatch, scenario, out: Path, collector) -> bytes:
    monkeypatch.setattr(sim_run, "quiet_collector", collector)
    run = sim_run.simulate(scenario, record=True)
    summary = summarize(run, "gc")
    summary.pop("wall_seconds", None)
    write_run(out, run, summary)
    return b"".join((p.read_bytes() for p in sorted(out.rglob("*"))
                     if p.is_file() and p.name not in ("summary.json", "report.html")))


@pytest.mark.parametrize("name", ["taihu.yaml", "faults/mixed-byzantine-20.yaml", "faults/crash-catch-up.yaml"])
def test_the_run_is_the_same_whether_the_collector_is_quiet_default_or_eager(name, monkeypatch, tmp_path):
    scenario = _small(name)
    quiet = _export(monkeypatch, scenario, tmp_path / "quiet", quiet_collector)
    default = _export(monkeypatch, scenario, tmp_path / "default", nullcontext)
    eager = _export(monkeypatch, scenario, tmp_path / "eager", _eager_collector)
    assert quiet == default == eager
    assert len(quiet) > 10_000  # the ledgers, the trace and the records: something was compared


def test_a_run_leaves_the_collector_as_it_found_it():
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    seen = {}

    def probe(arg, now):
        seen["threshold"], seen["frozen"] = gc.get_threshold()[0], gc.get_freeze_count()

    run = sim_run.build(_small("taihu.yaml", 5))
    run.engine.at(1, probe, None)
    run.engine.until = 10**9  # a second of virtual time: no workload, only the replicas' timers
    with quiet_collector():
        run.engine.run()
    assert seen["threshold"] == FIRST_THRESHOLD and seen["frozen"] > frozen  # quiet while it ran
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == frozen


def test_the_collector_is_restored_when_the_run_fails():
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with quiet_collector():
            raise RuntimeError("a run that fails half way")
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == frozen
