"""The on-disk encoding of durable records (consensus/durable.py), for node/sqlite_store.py.

Each record is one canonical JSON object (ASCII text), tagged by ``"record"``. Signed
envelopes are stored exactly as the wire carries them (node/codec.py: the signed bytes
verbatim as ``data``, the signature in hex, and the attachments that prove themselves
by hash), so what a node reads back is byte for byte what it signed or accepted. The
messages a record holds unsigned use the same shape with the body in ``"message"``:

| ``record`` | other fields |
|---|---|
| ``view-change-sent`` | ``view_change``: ``{"message": <VIEW-CHANGE body>, "envelopes": [...]}` (its pre-prepares name their blocks by digest; the `prepared` records hold the blocks)` |
| ``new-view-built`` | ``view``: int |
| ``view-installed`` | ``view``: int; ``new_view``: the NEW-VIEW envelope, or null for view 0 |
| ``proposed`` | ``pre_prepare``: ``{"message": <PRE-PREPARE body>, "block": <block>}`` |
| ``accepted`` | ``pre_prepare``: the PRE-PREPARE envelope (with its ``block``) |
| ``prepared`` | ``proof``: ``{"pre_prepare": <digest>, "prepares": [<digest>...], "envelopes": [...], "blocks": [...]}`` |
| ``stabilised`` | ``seq``: int; ``proof``: [CHECKPOINT or COMMIT envelopes] |

A body names the envelopes it embeds by the SHA-256 of their signed bytes, as on the
wire (docs/messages.md); a block is ``{"hash", "header", "txs"}`` as in the ledger
(docs/ledger.md). No pickle: the format is documented, language-neutral and checked on
read (hashes, transaction roots, canonical signed bytes, the chain id).
"""

from __future__ import annotations

import json

from consensus.durable import (Accepted, NewViewBuilt, Prepared, Proposed, Record, Stabilised, ViewChangeSent,
                               ViewInstalled)
from consensus.encoding import canonical
from consensus.messages import Checkpoint, Commit, NewView, PrePrepare, ViewChange

from .codec import (MalformedMessage, decode_object, decode_proof, decode_unsigned, envelope_object, proof_object,
                    unsigned_object)

TAGS = {ViewChangeSent: "view-change-sent", NewViewBuilt: "new-view-built", ViewInstalled: "view-installed",
        Proposed: "proposed", Accepted: "accepted", Prepared: "prepared", Stabilised: "stabilised"}


class MalformedRecord(ValueError):
    """Text that does not decode to a well-formed durable record."""


def record_object(record: Record) -> dict:
    kind = type(record)
    tag = TAGS.get(kind)
    if tag is None:
        raise TypeError(f"unknown durable record {record!r}")
    if kind is Accepted:
        return {"record": tag, "pre_prepare": envelope_object(record.pre_prepare)}
    if kind is Prepared:
        return {"record": tag, "proof": proof_object(record.proof)}
    if kind is Proposed:
        return {"record": tag, "pre_prepare": unsigned_object(record.pre_prepare)}
    if kind is ViewChangeSent:
        return {"record": tag, "view_change": unsigned_object(record.view_change)}
    if kind is ViewInstalled:
        return {"record": tag, "view": record.view,
                "new_view": None if record.new_view is None else envelope_object(record.new_view)}
    if kind is NewViewBuilt:
        return {"record": tag, "view": record.view}
    return {"record": tag, "seq": record.seq, "proof": [envelope_object(env) for env in record.proof]}


def encode_record(record: Record) -> str:
    return canonical(record_object(record)).decode("ascii")


def decode_record(text: str, chain_id: str) -> Record:
    """The inverse of ``encode_record``, or MalformedRecord."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise MalformedRecord("not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedRecord("a record is a JSON object")
    tag = obj.get("record")
    try:
        record = _decode(tag, obj, chain_id)
    except MalformedMessage as exc:
        raise MalformedRecord(f"{tag}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedRecord(f"{tag}: {exc!r}") from None
    return record


def _decode(tag, obj: dict, chain_id: str) -> Record:
    if tag == "accepted":
        return Accepted(_of(decode_object(obj["pre_prepare"], chain_id), PrePrepare))
    if tag == "prepared":
        return Prepared(decode_proof(obj["proof"], chain_id))
    if tag == "proposed":
        return Proposed(_unsigned(obj["pre_prepare"], chain_id, PrePrepare))
    if tag == "view-change-sent":
        return ViewChangeSent(_unsigned(obj["view_change"], chain_id, ViewChange))
    if tag == "view-installed":
        new_view = obj["new_view"]
        return ViewInstalled(_int(obj["view"]),
                             None if new_view is None else _of(decode_object(new_view, chain_id), NewView))
    if tag == "new-view-built":
        return NewViewBuilt(_int(obj["view"]))
    if tag == "stabilised":
        proof = obj["proof"]
        if not isinstance(proof, list):
            raise MalformedRecord("stabilised: proof must be a list")
        envs = tuple(decode_object(p, chain_id) for p in proof)
        if not all(type(e.message) in (Checkpoint, Commit) for e in envs):
            raise MalformedRecord("stabilised: proof must hold checkpoints or commits")
        return Stabilised(_int(obj["seq"]), envs)
    raise MalformedRecord(f"unknown record {tag!r}")


def _of(env, kind):
    if type(env.message) is not kind:
        raise MalformedRecord(f"expected a signed {kind.KIND}, got {type(env.message).KIND}")
    return env


def _unsigned(obj, chain_id: str, kind):
    message = decode_unsigned(obj, chain_id)
    if type(message) is not kind:
        raise MalformedRecord(f"expected a {kind.KIND}, got {type(message).KIND}")
    return message


def _int(value) -> int:
    if type(value) is not int or value < 0:
        raise MalformedRecord(f"expected a non-negative integer, got {value!r}")
    return value
