"""``python -m citychain``: the same command line as ``citychain`` (node processes use it)."""

from .cli import entry

entry()
