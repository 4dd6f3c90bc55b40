"""A node process's storage: the SQLite file in its data directory (node/sqlite_store.py, docs/storage.md).

A directory that is corrupt, another chain's, or in use by another process raises
``node.sqlite_store.StorageError``, whose message names the file (and the height).
"""
from node.sqlite_store import open_node_storage


def open_storage(data_dir, chain_id, genesis_hash):
    """(store, ledger, world state) of the node whose data directory this is."""
    return open_node_storage(data_dir, chain_id, genesis_hash)
