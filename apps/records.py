"""Department records: each organisation keeps key-value records in its own namespace.

The simplest useful app: any client may read, only clients of the owning
organisation may write, and every write keeps its version and author.
"""

from __future__ import annotations

from .base import Rejected, StateView, Tx
from .policy import settings

MAX_KEY, MAX_VALUE = 128, 4096


class Records:
    NAME = "records"
    OPS = ("put", "delete")

    def __init__(self, config: dict | None = None):
        settings(config, ())

    def organisations(self) -> set[str]:
        return set()

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        key = tx.args.get("key")
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
            raise Rejected(f"key must be a string of 1..{MAX_KEY} characters")
        slot = f"{tx.org}/{key}"
        current = state.get(slot)
        if tx.op == "put":
            value = tx.args.get("value")
            if not isinstance(value, str) or len(value) > MAX_VALUE:
                raise Rejected(f"value must be a string of at most {MAX_VALUE} characters")
            version = 1 if current is None else current["version"] + 1
            state.put(slot, {"value": value, "version": version, "author": tx.client, "height": tx.height})
            return {"version": version}
        if current is None:
            raise Rejected(f"no record '{key}' for {tx.org}")
        state.delete(slot)
        return None
