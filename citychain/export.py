"""Writing a finished run to disk: summary.json, genesis/, one ledger file per node,
submitted.jsonl and faults.json (the layout: docs/audit.md).

``ExportTarget`` guards the directory: a non-empty one is refused unless ``force``
(and even then only if it holds nothing but an earlier export, checked at every depth:
``not_an_export``); a lock beside it
keeps two runs from writing it at once; the parent is checked writable before the
simulation starts; and the export is written to a temporary directory beside it and
renamed into place, so a crash leaves the old export or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from node.ledger import LineCache

from .sim.run import SimRun

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None



# What an export writes, by path relative to it (write_run and Genesis.write): nothing else,
# at any depth, may be in a directory that --force replaces.
_EXPORT_FILES = frozenset({"summary.json", "submitted.jsonl", "faults.json", "genesis/genesis.json", "genesis/ca.pem",
                           "genesis/revocations.crl",
                           "trace.jsonl", "replica-state.png", "report.html"})
_EXPORT_DIRS = frozenset({"genesis", "genesis/clients", "ledgers"})
_EXPORT_PATTERNS = (re.compile(r"genesis/[a-z]+-[0-9]+\.pem"), re.compile(r"genesis/clients/client-[0-9]+\.pem"),
                    re.compile(r"ledgers/[a-z]+-[0-9]+\.jsonl"))


def not_an_export(out: Path) -> list[str]:
    """Every path under ``out`` (relative, sorted) that an export does not write: a file of
    another name, a symbolic link, a FIFO or device, a directory of another name."""
    strangers = []
    for top, dirs, files in os.walk(out, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            path = Path(top) / name
            rel = path.relative_to(out).as_posix()
            if path.is_symlink():
                strangers.append(f"{rel} (a symbolic link)")
            elif name in dirs:
                if rel not in _EXPORT_DIRS:
                    strangers.append(f"{rel}/")
            elif not path.is_file():
                strangers.append(f"{rel} (not a regular file)")
            elif rel not in _EXPORT_FILES and not any(p.fullmatch(rel) for p in _EXPORT_PATTERNS):
                strangers.append(rel)
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()
                   and (Path(top) / d).relative_to(out).as_posix() in _EXPORT_DIRS]
    return strangers


class OutputError(OSError):
    """The output directory cannot be used; the message says why (exit 2)."""


def write_run(out: Path, run: SimRun, summary: dict, name: str = "", report_window=None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    run.genesis.write(out / "genesis")
    ledgers = out / "ledgers"
    ledgers.mkdir(exist_ok=True)
    cache = LineCache()
    for node_id, node in run.nodes.items():
        node.ledger.export(ledgers / f"{node_id}.jsonl", cache)
    # What the auditor needs to judge liveness on its own: what was submitted when,
    # which nodes were Byzantine, and when the last fault healed.
    with open(out / "submitted.jsonl", "w") as f:
        for tx, at in run.metrics.submitted.items():
            f.write(json.dumps({"tx": tx, "at_ns": at}) + "\n")
    (out / "faults.json").write_text(json.dumps({
        "byzantine": sorted(run.plan.byzantine),
        "timeline": [{"at_ns": t, "event": what} for t, what in run.timeline],
        "healed_at_ns": run.plan.last_heal,
        "liveness_bound_ns": int(run.scenario.run.liveness_bound_s * 1e9),
        "epoch_ns": run.membership.epoch_ns,  # block timestamps are calendar: this is virtual time 0
    }, indent=2) + "\n")
    if run.recorder is not None:  # a recorded run: its trace (docs/teaching.md) and the replica state plot
        from .teach.plots import replica_state

        trace = run.trace(name or summary.get("scenario", ""))
        trace.write(out / "trace.jsonl")
        replica_state(trace, out / "replica-state.png")
    from .teach.report import write_report  # report.html: the step-through page (docs/teaching.md)

    write_report(out / "report.html", summary, trace if run.recorder is not None else None, window=report_window)


class ExportTarget:
    """An output directory, claimed before a run and filled atomically after it.

    ``prepare()`` before the simulation (refuses a non-empty directory without
    ``force``, takes the lock, makes the temporary directory); ``commit(write)`` after
    it; ``close()`` always (removes what was not committed, releases the lock).
    """

    def __init__(self, out: Path, force: bool = False):
        self.out = Path(out).absolute()
        self.force = force
        self.parent = self.out.parent
        self.lock_path = self.parent / f".{self.out.name}.lock"
        self.temp: Path | None = None
        self._lock_fd: int | None = None

    def prepare(self) -> None:
        self._check_existing()
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--out {self.out}: cannot create {self.parent}: {exc.strerror or exc}") from None
        self._lock()
        for stale in self.parent.glob(f".{self.out.name}.partial-*"):  # from a run that crashed; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        try:
            self.temp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-", dir=self.parent))
            os.chmod(self.temp, 0o777 & ~_umask())  # mkdtemp makes it private; an export is as mkdir makes it
        except OSError as exc:
            raise OutputError(f"--out {self.out}: {self.parent} is not writable: {exc.strerror or exc}") from None
        if self.out.exists() and not os.access(self.out, os.W_OK | os.X_OK):
            raise OutputError(f"--out {self.out}: not writable, so it cannot be replaced")

    def _check_existing(self) -> None:
        here = Path.cwd().resolve()
        if self.out.resolve() == here or self.out.resolve() in here.parents:
            raise OutputError(f"--out {self.out}: that is the current directory or holds it; choose another")
        if not self.out.exists():
            return
        if not self.out.is_dir():
            raise OutputError(f"--out {self.out}: exists and is not a directory")
        entries = sorted(p.name for p in self.out.iterdir())
        if not entries:
            return
        if not self.force:
            raise OutputError(f"--out {self.out}: not empty; add --force to replace it (an earlier export's stale "
                              "ledgers would otherwise mix with this run's)")
        strangers = not_an_export(self.out)
        if strangers:
            raise OutputError(f"--out {self.out}: holds what a citychain export does not ({', '.join(strangers[:5])}"
                              f"{' …' if len(strangers) > 5 else ''}); --force replaces only an earlier export: "
                              "move those away or choose another --out")

    def _lock(self) -> None:
        if fcntl is None:
            return
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"--out {self.out}: {self.parent} is not writable: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputError(f"--out {self.out}: another citychain run is writing it "
                                  f"(it holds {self.lock_path})") from None
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its last holder removed while we opened it
                self._lock_fd = fd
                return
            os.close(fd)

    def commit(self, write) -> None:
        """``write(directory)`` fills the temporary directory; then it replaces ``out``."""
        assert self.temp is not None, "prepare() first"
        write(self.temp)
        _fsync_tree(self.temp)
        self._check_existing()  # again: something that ignores the lock may have written there meanwhile
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.parent))
            os.rename(self.out, old / "export")
        try:
            os.rename(self.temp, self.out)
        except OSError:
            if old is not None:
                os.rename(old / "export", self.out)  # put the earlier export back
                old.rmdir()
            raise
        self.temp = None
        _fsync_dir(self.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None
        if self._lock_fd is not None:
            try:
                os.unlink(self.lock_path)
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory of the new export before it is renamed into place,
    so that after a power loss the renamed directory is not missing its contents."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(folder))
