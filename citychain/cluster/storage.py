"""Temporary: in-memory storage until the SQLite store lands."""
from node.ledger import Ledger
from node.state import WorldState
from node.store import MemoryStore


def open_storage(data_dir, chain_id, genesis_hash):
    return MemoryStore(), Ledger(genesis_hash), WorldState()
