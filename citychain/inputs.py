"""Reading an export's files as hostile input (docs/audit.md, "Limits").

An export may come from anyone: the audit and query read only regular files (a
symbolic link is followed only to a regular file; a FIFO, a device, a socket or a
directory is refused without blocking on it), and never more than a documented
number of bytes: ``MAX_FILE_BYTES`` for a file, ``MAX_LINE_BYTES`` for one line of a
ledger or of submitted.jsonl and for a file that is one document (genesis.json,
faults.json, summary.json, a PEM certificate). What fails is an ``UnreadableFile``
(an ``OSError``) whose message says why in one line.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 1 << 30  # 1 GiB: a ledger file, submitted.jsonl
MAX_LINE_BYTES = 64 << 20  # 64 MiB: a ledger line, and a one-document file (as node/codec.py's MAX_WIRE_BYTES)


class UnreadableFile(OSError):
    """A file the audit will not read: not a regular file, too large, or an OS error."""


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file (after following symbolic links) of at
    most ``limit`` bytes; else ``UnreadableFile``. Never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnreadableFile(f"{path}: a loop of symbolic links") from None
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{path}: not a regular file ({_kind(info.st_mode)}); only regular files are read")
        if info.st_size > limit:
            raise UnreadableFile(f"{path}: {info.st_size} bytes, more than the limit of {limit} bytes")
        chunks, total = [], 0
        while True:  # the size may change while reading: read at most limit + 1 bytes
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UnreadableFile(f"{path}: more than the limit of {limit} bytes")
        return b"".join(chunks)
    except UnreadableFile:
        raise
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def loads(data: bytes | str, **hooks):
    """``json.loads`` whose every failure is a ``ValueError`` (a nesting too deep for the
    parser included)."""
    try:
        return json.loads(data, **hooks)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason}") from None


__all__ = ["MAX_FILE_BYTES", "MAX_LINE_BYTES", "UnreadableFile", "read_regular", "loads"]
