"""Deterministic applications over the ledger's world state.

An app receives a transaction and a view of its own state and returns a result
or raises ``Rejected``. Apps import nothing of ours: not ``consensus``, ``node``
or ``citychain``.
"""

from .data_sharing import DataSharing
from .evidence import Evidence
from .licences import Licences
from .provident_fund import ProvidentFund
from .records import Records
from .traceability import Traceability

REGISTRY = {app.NAME: app for app in (Records, Licences, ProvidentFund, Traceability, Evidence, DataSharing)}
