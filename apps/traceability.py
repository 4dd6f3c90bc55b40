"""Agricultural product traceability (Sichuan and Henan chains).

A producer registers a batch with its origin; custody passes along the supply
chain only from the organisation that holds it; inspectors add results; the
batch's history traces it from farm to shelf.
"""

from __future__ import annotations

from .base import Rejected, StateView, Tx
from .policy import policy, require, settings, text

RESULTS = ("pass", "fail")


class Traceability:
    NAME = "traceability"
    OPS = ("register", "transfer", "inspect", "sell")

    def __init__(self, config: dict | None = None):
        config = settings(config, ('producers', 'inspectors'))
        self.producers = policy(config, "producers", "any of [agriculture]")
        self.inspectors = policy(config, "inspectors", "any of [market-regulation]")

    def organisations(self) -> set[str]:
        return set(self.producers.orgs | self.inspectors.orgs)

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        batch_id = require(tx.args, "batch_id", max_len=64)
        key = f"batch/{batch_id}"
        batch = state.get(key)
        if tx.op == "register":
            self.producers.check(tx, "register batches")
            if batch is not None:
                raise Rejected(f"batch {batch_id} is already registered")
            batch = {"id": batch_id, "product": require(tx.args, "product", max_len=64),
                     "origin": require(tx.args, "origin", max_len=128),
                     "quantity_kg": require(tx.args, "quantity_kg", int),
                     "custodian": tx.org, "status": "in-supply-chain", "inspections": 0, "history": []}
            self._log(batch, tx, "registered", origin=batch["origin"])
        else:
            if batch is None:
                raise Rejected(f"unknown batch {batch_id}")
            if batch["status"] == "sold":
                raise Rejected(f"batch {batch_id} was sold")
            if tx.op == "transfer":
                if tx.org != batch["custodian"]:
                    raise Rejected(f"{tx.org} does not hold batch {batch_id} ({batch['custodian']} does)")
                to = require(tx.args, "to", max_len=48)
                if to == tx.org:
                    raise Rejected("a transfer needs another organisation")
                batch["custodian"] = to
                self._log(batch, tx, "transferred", to=to)
            elif tx.op == "inspect":
                self.inspectors.check(tx, "inspect batches")
                result = tx.args.get("result")
                if result not in RESULTS:
                    raise Rejected(f"result must be one of {RESULTS}")
                batch["inspections"] += 1
                if result == "fail":
                    batch["status"] = "recalled"
                self._log(batch, tx, f"inspected: {result}", notes=text(tx.args, "notes", 128))
            elif tx.op == "sell":
                if tx.org != batch["custodian"]:
                    raise Rejected(f"{tx.org} does not hold batch {batch_id}")
                if batch["status"] == "recalled":
                    raise Rejected(f"batch {batch_id} failed inspection and is recalled")
                batch["status"] = "sold"
                self._log(batch, tx, "sold")
        state.put(key, batch)
        return {"custodian": batch["custodian"], "status": batch["status"]}

    @staticmethod
    def _log(batch, tx, what, **extra):
        batch["history"].append({"event": what, "org": tx.org, "height": tx.height, "at": tx.timestamp, **extra})
