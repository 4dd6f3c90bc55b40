"""Wire and ledger encodings of signed envelopes and blocks (docs/messages.md).

An envelope on the wire is the canonical JSON object
``{"data": <the signed bytes, as a string>, "sig": <hex>}``, plus ``"block"`` for a
PRE-PREPARE. Keeping the signed bytes verbatim means a receiver (or an auditor
with openssl) verifies exactly what was signed, with no re-encoding step.
"""

from __future__ import annotations

import json

from consensus.block import Block, BlockHeader
from consensus.encoding import canonical, sha256_hex
from consensus.messages import Checkpoint, Commit, PrePrepare, Prepare, Request, Signed

KINDS = {cls.KIND: cls for cls in (Request, PrePrepare, Prepare, Commit, Checkpoint)}
MAX_WIRE_BYTES = 8 * 1024 * 1024


class MalformedMessage(ValueError):
    """Bytes that do not decode to a well-formed envelope; ``reason`` is a short tag."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def signed_bytes(message, chain_id: str, signer: str) -> bytes:
    body = message.body()
    body["chain"] = chain_id
    body["signer"] = signer
    return canonical(body)


def envelope_dict(env: Signed) -> dict:
    return {"data": env.data.decode("ascii"), "sig": env.signature.hex()}


def block_dict(block: Block) -> dict:
    return {"hash": block.hash, "header": block.header.to_dict(),
            "txs": [envelope_dict(r) for r in block.requests]}


def wire_size(data: bytes, signature: bytes, block: Block | None = None) -> int:
    obj = {"data": data.decode("ascii"), "sig": signature.hex()}
    if block is not None:
        obj["block"] = block_dict(block)
    return len(canonical(obj))


def encode(env: Signed) -> bytes:
    obj = envelope_dict(env)
    if isinstance(env.message, PrePrepare):
        obj["block"] = block_dict(env.message.block)
    return canonical(obj)


def _require(obj, key, kind, reason="malformed"):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise MalformedMessage(reason, f"field {key!r} missing or not {kind.__name__}")
    return value


def _message_from_body(body: dict, block: Block | None):
    kind = body.get("type")
    cls = KINDS.get(kind)
    if cls is None:
        raise MalformedMessage("unknown-type", repr(kind))
    fields = {k: v for k, v in body.items() if k not in ("type", "chain", "signer")}
    if cls is PrePrepare:
        if block is None:
            raise MalformedMessage("malformed", "pre-prepare without its block")
        fields["block"] = block
    try:
        return cls(**fields)
    except (TypeError, ValueError) as exc:
        raise MalformedMessage("malformed", f"{kind}: {exc}") from None


def decode_envelope(obj: dict, chain_id: str, block: Block | None = None) -> Signed:
    data_text = _require(obj, "data", str)
    sig_hex = _require(obj, "sig", str)
    try:
        signature = bytes.fromhex(sig_hex)
        data = data_text.encode("ascii")
        body = json.loads(data)
    except (ValueError, UnicodeEncodeError):
        raise MalformedMessage("malformed", "data is not canonical JSON or sig is not hex") from None
    if len(signature) != 64:
        raise MalformedMessage("malformed", "an Ed25519 signature has 64 bytes")
    if not isinstance(body, dict) or canonical(body) != data:
        raise MalformedMessage("not-canonical", "signed data must be canonical JSON")
    if body.get("chain") != chain_id:
        raise MalformedMessage("wrong-chain", repr(body.get("chain")))
    signer = _require(body, "signer", str)
    message = _message_from_body(body, block)
    size = wire_size(data, signature, block)
    return Signed(message, signer, signature, data, sha256_hex(data), size)


def decode_block(obj: dict, chain_id: str) -> Block:
    header_obj = _require(obj, "header", dict)
    try:
        header = BlockHeader(**header_obj)
    except TypeError as exc:
        raise MalformedMessage("malformed", f"block header: {exc}") from None
    txs = tuple(decode_envelope(t, chain_id) for t in _require(obj, "txs", list))
    if any(not isinstance(t.message, Request) for t in txs):
        raise MalformedMessage("malformed", "a block holds only requests")
    try:
        block = Block.create(header, txs)
    except ValueError as exc:
        raise MalformedMessage("bad-tx-root", str(exc)) from None
    if "hash" in obj and obj["hash"] != block.hash:
        raise MalformedMessage("bad-block-hash", f"{obj['hash']} != {block.hash}")
    return block


def decode(raw: bytes, chain_id: str) -> Signed:
    """Bytes from the network to an envelope, or MalformedMessage."""
    if len(raw) > MAX_WIRE_BYTES:
        raise MalformedMessage("oversized", f"{len(raw)} bytes")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("malformed", "not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("malformed", "not an object")
    block = decode_block(obj["block"], chain_id) if "block" in obj else None
    return decode_envelope(obj, chain_id, block)
