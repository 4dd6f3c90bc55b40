"""Deterministic applications over the ledger's world state.

An app receives a transaction and a view of its own state and returns a result
or raises ``Rejected``. Apps never import ``node`` or ``consensus``.
"""

from .records import Records

REGISTRY = {app.NAME: app for app in (Records,)}
