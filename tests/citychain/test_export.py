"""`citychain run --out`: a non-empty directory is refused without --force, two runs
cannot write one directory, writability is checked before the simulation, and the
export appears whole or not at all."""

import json

import pytest
from click.testing import CliRunner

from citychain import export as export_module
from citychain.cli import main
from citychain.exits import BAD_INPUT, OK
from citychain.export import ExportTarget, OutputError


def run(out, *args, nodes=4):
    return CliRunner().invoke(main, ["run", "taihu", "--nodes", str(nodes), "--out", str(out), *args])


def ledgers(out):
    return sorted(p.name for p in (out / "ledgers").iterdir())


def test_a_non_empty_out_is_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "out"
    assert run(out, nodes=7).exit_code == OK
    result = run(out)
    assert result.exit_code == BAD_INPUT and "not empty; add --force to replace it" in result.output
    assert len(ledgers(out)) == 7  # untouched
    assert run(out, "--force").exit_code == OK
    assert ledgers(out) == [f"node-{i:02d}.jsonl" for i in range(4)]  # no stale ledgers of the 7-node run
    assert CliRunner().invoke(main, ["audit", str(out)]).exit_code == OK
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock, temporary or old directory left


def test_force_replaces_only_an_earlier_export(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    result = run(out, "--force")
    assert result.exit_code == BAD_INPUT and "holds what a citychain export does not (thesis.tex)" in result.output
    assert (out / "thesis.tex").read_text() == "years of work"


def test_an_empty_or_new_out_is_fine_and_force_needs_out(tmp_path):
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty").exit_code == OK
    assert run(tmp_path / "a" / "b").exit_code == OK  # parents are made
    result = CliRunner().invoke(main, ["run", "taihu", "--nodes", "4", "--force"])
    assert result.exit_code == BAD_INPUT and "--force goes with --out" in result.output


def test_two_runs_cannot_write_one_directory(tmp_path):
    out = tmp_path / "out"
    first = ExportTarget(out)
    first.prepare()  # as a run in progress holds it
    try:
        result = run(out)
        assert result.exit_code == BAD_INPUT and "another citychain run is writing it" in result.output
    finally:
        first.close()
    assert run(out).exit_code == OK  # released


def test_an_unwritable_out_is_refused_before_the_simulation(tmp_path, monkeypatch):
    def no_simulation(*args, **kwargs):
        raise AssertionError("the simulation started")

    monkeypatch.setattr("citychain.sim.run.simulate", no_simulation)
    (tmp_path / "file").write_text("")
    result = run(tmp_path / "file" / "out")
    assert result.exit_code == BAD_INPUT and "cannot create" in result.output
    result = run(tmp_path / "file")
    assert result.exit_code == BAD_INPUT and "is a file" in result.output  # click says so itself


def test_a_crash_while_writing_leaves_the_old_export_whole(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run(out, nodes=7).exit_code == OK
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = export_module.write_run

    def crash(directory, *args):
        real(directory, *args)
        (directory / "ledgers" / "node-00.jsonl").write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "write_run", crash)
    result = run(out, "--force")
    assert result.exit_code == BAD_INPUT and "No space left on device" in result.output
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_partial_export_left_by_a_killed_run_is_cleared_by_the_next(tmp_path):
    out = tmp_path / "out"
    (tmp_path / ".out.partial-dead").mkdir()  # as a run killed with SIGKILL leaves it
    assert run(out).exit_code == OK
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_export_target_refuses_what_the_cli_refuses(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_text("{}")
    with pytest.raises(OutputError, match="not empty"):
        ExportTarget(tmp_path / "out").prepare()
    target = ExportTarget(tmp_path / "out", force=True)
    target.prepare()
    target.commit(lambda d: (d / "summary.json").write_text(json.dumps({"new": True})))
    target.close()
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {"new": True}


def test_the_current_directory_is_never_an_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path), str(tmp_path.parent)):
        result = CliRunner().invoke(main, ["run", "taihu", "--nodes", "4", "--out", out, "--force"])
        assert result.exit_code == BAD_INPUT and "the current directory or holds it" in result.output


def test_a_failed_rename_puts_the_earlier_export_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run(out).exit_code == OK
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    real = export_module.os.rename

    def rename(src, dst):
        if ".partial-" in str(src):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(export_module.os, "rename", rename)
    assert run(out, "--force").exit_code == BAD_INPUT
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("stranger, named", [
    ("ledgers/notes.txt", "ledgers/notes.txt"), ("genesis/mykeys/ca.key", "genesis/mykeys/"),
    ("genesis/clients/client-00.key", "genesis/clients/client-00.key"), ("ledgers/old/node-00.jsonl", "ledgers/old/"),
    ("genesis/node-00.pem.bak", "genesis/node-00.pem.bak")])
def test_force_refuses_what_an_export_does_not_write_at_any_depth(tmp_path, stranger, named):
    """--force once looked only at the top level: files in subfolders were deleted."""
    out = tmp_path / "out"
    assert run(out).exit_code == OK
    (out / stranger).parent.mkdir(parents=True, exist_ok=True)
    (out / stranger).write_text("mine")
    result = run(out, "--force")
    assert result.exit_code == BAD_INPUT, result.output
    assert "holds what a citychain export does not" in result.output and named in result.output
    assert (out / stranger).read_text() == "mine"
    (out / stranger).unlink()
    if named.endswith("/"):
        (out / named).rmdir()
    assert run(out, "--force").exit_code == OK  # an export and nothing else is replaced


def test_force_refuses_a_symbolic_link_inside_the_export(tmp_path):
    out = tmp_path / "out"
    assert run(out).exit_code == OK
    (tmp_path / "elsewhere").mkdir()
    (out / "ledgers" / "node-09.jsonl").symlink_to(tmp_path / "elsewhere")
    result = run(out, "--force")
    assert result.exit_code == BAD_INPUT and "ledgers/node-09.jsonl (a symbolic link)" in result.output
