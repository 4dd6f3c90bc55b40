import base64
import hashlib
import random

from apps.data_sharing import DataSharing
from citychain.sealing import open_sealed, org_key, public_hex, seal, unwrap, wrap


def keys_for(orgs, data_key, rng):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    return {o: wrap(data_key, public_hex(org_key(1, "zj", o)), X25519PrivateKey.from_private_bytes(rng.randbytes(32)),
                    rng.randbytes(12)) for o in orgs}


def test_sealed_data_opens_only_with_a_wrapped_key():
    rng = random.Random(3)
    data_key = rng.randbytes(32)
    blob = seal(b"population statistics", data_key, rng.randbytes(12))
    wrapped = keys_for(["health", "stats"], data_key, rng)
    assert open_sealed(blob, unwrap(wrapped["health"], org_key(1, "zj", "health"))) == b"population statistics"
    try:
        unwrap(wrapped["health"], org_key(1, "zj", "police"))
        raise AssertionError("another department opened the key")
    except Exception as exc:
        assert type(exc).__name__ == "InvalidTag"


def test_register_access_grant_revoke(caller):
    c = caller(DataSharing({"owners": "any of [health]"}))
    rng = random.Random(1)
    wrapped = keys_for(["health", "stats"], rng.randbytes(32), rng)
    digest = hashlib.sha256(b"ciphertext").hexdigest()
    c("health", "register", dataset_id="D1", digest=digest, size=10, keys=wrapped)
    assert c("stats", "access", dataset_id="D1")["wrapped_key"] == wrapped["stats"]
    c.refused("police", "access", "police is not authorised", dataset_id="D1")
    c("health", "grant", dataset_id="D1", org="police", wrapped_key=keys_for(["police"], b"k" * 32, rng)["police"])
    c("police", "access", dataset_id="D1")
    c("health", "revoke", dataset_id="D1", org="stats")
    c.refused("stats", "access", "stats is not authorised", dataset_id="D1")
    assert [a["org"] for a in c.state.get("access/D1")] == ["stats", "police"]


def test_owners_and_key_format_are_checked(caller):
    c = caller(DataSharing({"owners": "any of [health]"}))
    digest = hashlib.sha256(b"x").hexdigest()
    good = base64.b64encode(bytes(92)).decode()
    c.refused("stats", "register", "stats may not register", dataset_id="D1", digest=digest, size=1,
              keys={"stats": good})
    c.refused("health", "register", "the owner included", dataset_id="D1", digest=digest, size=1,
              keys={"stats": good})
    c.refused("health", "register", "is not 92 bytes", dataset_id="D1", digest=digest, size=1,
              keys={"health": "bm90IGEga2V5"})
    c("health", "register", dataset_id="D1", digest=digest, size=1, keys={"health": good})
    c.refused("stats", "grant", "only the owner health", dataset_id="D1", org="stats", wrapped_key=good)
    c.refused("health", "revoke", "holds no key", dataset_id="D1", org="health")
    c.refused("health", "access", "unknown dataset D2", dataset_id="D2")
