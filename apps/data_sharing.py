"""Secure data circulation (Zhejiang Chain).

A dataset is encrypted off chain (AES-GCM); its data key is wrapped for each
authorised department with that department's X25519 key. The chain holds the
ciphertext's digest, who may read it and the wrapped keys: the owner grants (adds
a key wrapped for another department) and revokes (removes it; new versions are
then encrypted under a fresh key), and every access is logged. The app only
checks structure: it never sees a key in the clear.
"""

from __future__ import annotations

import base64
import binascii

from .base import Rejected, StateView, Tx
from .policy import settings, policy, require

WRAPPED_BYTES = 32 + 12 + 32 + 16  # ephemeral X25519 key, nonce, AES-GCM(data key) with tag
_HEX = set("0123456789abcdef")


def _check_wrapped(org: str, text) -> str:
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != WRAPPED_BYTES:
        raise Rejected(f"the key wrapped for {org} is not {WRAPPED_BYTES} bytes of base64")
    return text


class DataSharing:
    NAME = "data_sharing"
    OPS = ("register", "grant", "revoke", "access")

    def __init__(self, config: dict | None = None):
        config = settings(config, ('owners',))
        self.owners = policy(config, "owners", "any of [big-data]")

    def organisations(self) -> set[str]:
        return set(self.owners.orgs)

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        dataset_id = require(tx.args, "dataset_id", max_len=64)
        key = f"dataset/{dataset_id}"
        ds = state.get(key)
        if tx.op == "register":
            self.owners.check(tx, "register datasets")
            if ds is not None and ds["owner"] != tx.org:
                raise Rejected(f"dataset {dataset_id} belongs to {ds['owner']}")
            digest = require(tx.args, "digest", max_len=64)
            if len(digest) != 64 or not _HEX.issuperset(digest):
                raise Rejected("digest must be the ciphertext's SHA-256, 64 hex characters")
            keys = tx.args.get("keys")
            if not isinstance(keys, dict) or tx.org not in keys:
                raise Rejected("keys must map each authorised organisation, the owner included, to its wrapped key")
            keys = {org: _check_wrapped(org, k) for org, k in keys.items()}
            version = 1 if ds is None else ds["version"] + 1
            ds = {"id": dataset_id, "owner": tx.org, "digest": digest, "version": version,
                  "size": require(tx.args, "size", int), "keys": keys, "height": tx.height}
            state.put(key, ds)
            return {"version": version, "readers": sorted(keys)}
        if ds is None:
            raise Rejected(f"unknown dataset {dataset_id}")
        if tx.op == "access":
            if tx.org not in ds["keys"]:
                raise Rejected(f"{tx.org} is not authorised to read dataset {dataset_id}")
            log = state.get(f"access/{dataset_id}") or []
            log.append({"org": tx.org, "by": tx.client, "height": tx.height, "at": tx.timestamp,
                        "version": ds["version"]})
            state.put(f"access/{dataset_id}", log)
            return {"wrapped_key": ds["keys"][tx.org], "digest": ds["digest"], "version": ds["version"]}
        if tx.org != ds["owner"]:
            raise Rejected(f"only the owner {ds['owner']} may change who reads dataset {dataset_id}")
        org = require(tx.args, "org", max_len=48)
        if tx.op == "grant":
            ds["keys"][org] = _check_wrapped(org, tx.args.get("wrapped_key"))
        else:
            if org == ds["owner"] or org not in ds["keys"]:
                raise Rejected(f"{org} holds no key to revoke")
            del ds["keys"][org]
        state.put(key, ds)
        return {"readers": sorted(ds["keys"])}
