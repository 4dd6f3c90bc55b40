"""Wire and ledger encodings of signed envelopes and blocks (docs/messages.md).

An envelope on the wire is the canonical JSON object
``{"data": <the signed bytes, as a string>, "sig": <hex>}``, plus attachments that
are not signed but prove themselves by hash: ``"block"`` for a PRE-PREPARE or
BLOCK-REPLY, ``"envelopes"`` for a VIEW-CHANGE or NEW-VIEW (whose pre-prepares name
their blocks by digest only), ``"entries"`` for BLOCKS. A durable prepared
certificate (``proof_object``) keeps its pre-prepare's block in ``"blocks"``. Keeping the signed bytes verbatim means a receiver (or an
auditor with openssl) verifies exactly what was signed, with no re-encoding step.
"""

from __future__ import annotations

import json
import re

from consensus.block import MAX_BLOCK_BYTES, Block, BlockHeader
from consensus.encoding import canonical, sha256_hex
from consensus.envelope import bare_wire_size
from consensus.messages import (BlockReply, BlockRequest, Checkpoint, Commit, NewView, NewViewRequest, PrePrepare,
                                Prepare, PreparedProof, Request, Signed, ViewChange, embedded)

from .sync_messages import Blocks, Fetch

KINDS = {cls.KIND: cls for cls in (Request, PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView,
                                   NewViewRequest, BlockRequest, BlockReply, Fetch, Blocks)}

# Limits (docs/messages.md, "Limits"). Checked while decoding, before the work they bound.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # an encoded envelope, checked before parsing ("oversized")
MAX_WIRE_BYTES = MAX_MESSAGE_BYTES  # the earlier name (citychain/inputs.py mirrors it)
MAX_BLOCK_REQUESTS = 10_000  # requests in one block: the scenario's largest block_size ("block-too-large")
# MAX_BLOCK_BYTES (consensus/block.py, 16 MiB): the signed bytes of a block's requests, summed
# ("block-too-large"); the primary never proposes more.
MAX_LIST_ITEMS = 100_000  # any other list: attached envelopes or blocks, digests in a body ("too-many-items")
MAX_INT = 2**63 - 1  # integers in a body or header are 0..MAX_INT ("bad-field")
MAX_NAME = 64  # ids, apps and ops: 1..64 characters ("bad-field")
MAX_CHAIN_ID = 256

_SIG = re.compile(r"[0-9a-f]{128}")  # fullmatch: exactly the hex of 64 bytes, lower case
_HEX64 = re.compile(r"[0-9a-f]{64}")  # a SHA-256 digest, lower case

# What each field must be (docs/messages.md, "Type rules"). A value of the wrong JSON
# type is "wrong-type" (a bool is not an integer); the right type out of range, or a
# digest that is not 64 lower-case hex digits, is "bad-field".
INT, DIGEST, NAME, CHAIN, OBJECT = "integer", "digest", "name", "chain id", "object"
DIGESTS = ("list", DIGEST)
PROOFS = ("list", {"pre_prepare": DIGEST, "prepares": DIGESTS})
_VOTE = {"view": INT, "seq": INT, "digest": DIGEST}
BODIES = {
    "request": {"nonce": INT, "app": NAME, "op": NAME, "args": OBJECT, "ts": INT},
    "pre-prepare": _VOTE, "prepare": _VOTE, "commit": _VOTE,
    "checkpoint": {"seq": INT, "block_hash": DIGEST, "state_root": DIGEST},
    "view-change": {"view": INT, "stable_seq": INT, "checkpoint_proof": DIGESTS, "prepared": PROOFS},
    "new-view": {"view": INT, "view_changes": DIGESTS, "pre_prepares": DIGESTS},
    "new-view-request": {"view": INT},
    "block-request": {"seq": INT, "digest": DIGEST},
    "block-reply": {"digest": DIGEST},
    "fetch": {"from_height": INT, "to_height": INT},
    "blocks": {"hashes": DIGESTS},
}
HEADER = {"chain_id": CHAIN, "height": INT, "prev_hash": DIGEST, "tx_root": DIGEST, "state_root": DIGEST,
          "view": INT, "proposer": NAME, "timestamp": INT}


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


def block_dict(block: Block) -> dict:
    return block.to_dict()


def attachments(message) -> dict:
    """What travels with a message unsigned, because it proves itself by hash."""
    kind = type(message)
    if kind is PrePrepare or kind is BlockReply:
        return {"block": block_dict(message.block)} if message.block is not None else {}
    if kind in (ViewChange, NewView):
        return _envelopes_attached(embedded(message))
    if kind is Blocks:
        return {"entries": [{"block": block_dict(b), "certificate": [c.to_dict() for c in cert]}
                            for b, cert in message.entries]}
    return {}


def _envelopes_attached(envs) -> dict:
    """Envelopes signed by reference, each once, with the blocks of the pre-prepares among
    them that hold one (only a durable prepared certificate's: a VIEW-CHANGE's and a
    NEW-VIEW's name their blocks by digest)."""
    envelopes, blocks = {}, {}
    for env in envs:
        if type(env.message) is Request:
            continue  # inside its block
        envelopes.setdefault(env.digest, env)
        if type(env.message) is PrePrepare and env.message.block is not None:
            blocks.setdefault(env.message.digest, env.message.block)
    out = {"envelopes": [e.to_dict() for _, e in sorted(envelopes.items())]}
    if blocks:
        out["blocks"] = [block_dict(b) for _, b in sorted(blocks.items())]
    return out


def _attached_once(message):
    """The envelopes ``attachments`` lists for a VIEW-CHANGE or NEW-VIEW (all it embeds
    but requests), each object once: a pre-prepare's requests are not walked."""
    seen: set[int] = set()
    stack = [message]
    while stack:
        m = stack.pop()
        inner = []
        if type(m) is ViewChange:
            inner.extend(m.checkpoint_proof)
            for proof in m.prepared:
                inner.append(proof.pre_prepare)
                inner.extend(proof.prepares)
        elif type(m) is NewView:
            inner.extend(m.view_changes)
            inner.extend(m.pre_prepares)
        for env in inner:
            if id(env) not in seen:
                seen.add(id(env))
                yield env
                if type(env.message) is ViewChange and type(m) is NewView:
                    stack.append(env.message)


_WITH_ATTACHMENTS = frozenset({PrePrepare, BlockReply, ViewChange, NewView, Blocks})
_bare_size = bare_wire_size


def wire_size(data: bytes, signature: bytes, message) -> int:
    if type(message) not in _WITH_ATTACHMENTS:
        return _bare_size(data, signature)
    obj = {"data": data.decode("ascii"), "sig": signature.hex()}
    obj.update(attachments(message))
    return len(canonical(obj))


def envelope_object(env: Signed) -> dict:
    """The envelope with its attachments as a JSON object; ``encode`` is its canonical text."""
    obj = env.to_dict()
    obj.update(attachments(env.message))
    return obj


def encode(env: Signed) -> bytes:
    return canonical(envelope_object(env))


# A node also keeps messages that are not signed (consensus/durable.py: the PRE-PREPARE
# it proposes is written before it is signed, the VIEW-CHANGE it sent is kept as the
# message, a prepared certificate is no message at all). They are encoded as the
# signed ones are: the body that would be signed, with the same attachments beside it.

def unsigned_object(message) -> dict:
    """``{"message": <body>, ...attachments}`` for an unsigned PRE-PREPARE or VIEW-CHANGE."""
    obj = {"message": message.body()}
    obj.update(attachments(message))
    return obj


def proof_object(proof: PreparedProof) -> dict:
    """``{"pre_prepare": <digest>, "prepares": [<digest>...], "envelopes": [...], "blocks": [...]}``."""
    obj = proof.body()
    obj.update(_envelopes_attached((proof.pre_prepare, *proof.prepares)))
    return obj


_JSON_TYPES = {INT: int, DIGEST: str, NAME: str, CHAIN: str, OBJECT: dict}


def check_value(where: str, value, rule) -> None:
    """``value`` obeys ``rule`` (a name above, ``("list", rule)`` or a dict schema), or MalformedMessage."""
    if isinstance(rule, dict):
        check_fields(where, value, rule)
        return
    if isinstance(rule, tuple):
        if type(value) is not list:
            raise MalformedMessage("wrong-type", f"{where} must be a list, got {type(value).__name__}")
        if len(value) > MAX_LIST_ITEMS:
            raise MalformedMessage("too-many-items", f"{where} holds {len(value)} items, at most {MAX_LIST_ITEMS}")
        for i, item in enumerate(value):
            check_value(f"{where}[{i}]", item, rule[1])
        return
    if type(value) is not _JSON_TYPES[rule]:  # exact: a bool is not an int, a float is not either
        raise MalformedMessage("wrong-type", f"{where} must be {'an' if rule[0] in 'aeiou' else 'a'} {rule}, "
                                             f"got {type(value).__name__}")
    if rule is INT:
        ok = 0 <= value <= MAX_INT
    elif rule is DIGEST:
        ok = _HEX64.fullmatch(value) is not None
    elif rule is NAME:
        ok = 0 < len(value) <= MAX_NAME
    elif rule is CHAIN:
        ok = 0 < len(value) <= MAX_CHAIN_ID
    else:
        ok = True
    if not ok:
        raise MalformedMessage("bad-field", f"{where} is not a valid {rule}: {str(value)[:80]!r}")


def check_fields(where: str, obj, schema: dict) -> None:
    """``obj`` is an object with exactly the fields of ``schema``, each obeying its rule."""
    if type(obj) is not dict:
        raise MalformedMessage("wrong-type", f"{where} must be an object, got {type(obj).__name__}")
    missing = schema.keys() - obj.keys()
    if missing:
        raise MalformedMessage("missing-field", f"{where}: {sorted(missing)}")
    extra = obj.keys() - schema.keys()
    if extra:
        raise MalformedMessage("unknown-field", f"{where}: {sorted(extra)[:5]}")
    for key, rule in schema.items():
        check_value(f"{where}.{key}", obj[key], rule)


def _require(obj, key, kind):
    if type(obj) is not dict:
        raise MalformedMessage("wrong-type", f"expected an object holding {key!r}, got {type(obj).__name__}")
    if key not in obj:
        raise MalformedMessage("missing-field", repr(key))
    value = obj[key]
    if type(value) is not kind:
        raise MalformedMessage("wrong-type", f"field {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _bounded(obj, key) -> list | None:
    """An optional attachment list: absent, or a list of at most MAX_LIST_ITEMS."""
    if type(obj) is not dict or key not in obj:
        return None
    value = obj[key]
    if type(value) is not list:
        raise MalformedMessage("wrong-type", f"{key} must be a list, got {type(value).__name__}")
    if len(value) > MAX_LIST_ITEMS:
        raise MalformedMessage("too-many-items", f"{key} holds {len(value)} items, at most {MAX_LIST_ITEMS}")
    return value


class _Decoder:
    def __init__(self, chain_id: str, blocks: dict[str, Block], entries: list | None = None,
                 envelopes: list | None = None):
        self.chain_id = chain_id
        self.blocks = blocks
        self.entries = entries
        self.raw: dict[str, dict] = {}  # digest of signed bytes -> attached envelope, decoded on use
        self.decoded: dict[str, Signed] = {}
        self.block_lens: dict[int, int] = {}  # id(block) -> length of its canonical encoding
        for obj in envelopes or []:
            data = _require(obj, "data", str)
            self.raw[sha256_hex(data.encode("ascii", "replace"))] = obj

    def ref(self, digest) -> Signed:
        """An embedded envelope named by digest in the signed body."""
        env = self.decoded.get(digest)
        if env is None:
            obj = self.raw.pop(digest, None)  # popped first: a reference cycle cannot recurse
            if obj is None:
                raise MalformedMessage("malformed", f"envelope {digest!r} is not attached")
            env = self.decoded[digest] = self.envelope(obj, embedded=True)
        return env

    def envelope(self, obj, embedded: bool = False) -> Signed:
        """An envelope object to a Signed. ``embedded``: named by digest inside another
        message; its size (``wire_size``, as if sent on its own) is then counted from the
        lengths of its parts, each block encoded once per message (``_size``), not by
        re-encoding its attachments: that cost a block's encoding per VIEW-CHANGE naming
        the block (K of them, one block: K times the input), before any signature check."""
        data_text = _require(obj, "data", str)
        sig_hex = _require(obj, "sig", str)
        if not _SIG.fullmatch(sig_hex):  # one spelling per signature: no upper case, no white space
            raise MalformedMessage("malformed", "sig is not 128 lower-case hex digits (an Ed25519 signature)")
        signature = bytes.fromhex(sig_hex)
        try:
            data = data_text.encode("ascii")
            body = json.loads(data)
            canonical_data = canonical(body) if isinstance(body, dict) else None
        except (ValueError, UnicodeEncodeError, RecursionError):
            raise MalformedMessage("malformed", "data is not canonical JSON") from None
        if canonical_data != data:
            raise MalformedMessage("not-canonical", "signed data must be canonical JSON")
        if body.get("chain") != self.chain_id:
            raise MalformedMessage("wrong-chain", repr(body.get("chain")))
        signer = _require(body, "signer", str)
        check_value("signer", signer, NAME)
        message = self.message(body, embedded)
        size = self._size(data, signature, message) if embedded else wire_size(data, signature, message)
        return Signed(message, signer, signature, data, sha256_hex(data), size)

    def _block_len(self, block) -> int:
        known = self.block_lens.get(id(block))
        if known is None:
            known = self.block_lens[id(block)] = len(canonical(block_dict(block)))
        return known

    def _size(self, data: bytes, signature: bytes, message) -> int:
        """``wire_size(data, signature, message)``, counted: the canonical object
        {"blocks"?, "block"?, "data", "envelopes"?, "sig"} is '{', its members joined by
        ',', '}'; each member '"key":' and its value."""
        kind = type(message)
        bare = _bare_size(data, signature)
        if kind is PrePrepare or kind is BlockReply:
            if message.block is None:
                return bare
            return bare + 1 + len('"block":') + self._block_len(message.block)
        if kind not in (ViewChange, NewView):
            return bare
        envelopes, blocks = {}, {}
        for env in _attached_once(message):
            envelopes.setdefault(env.digest, env)
            if type(env.message) is PrePrepare and env.message.block is not None:
                blocks.setdefault(env.message.digest, env.message.block)
        size = bare + 1 + len('"envelopes":[]') + max(len(envelopes) - 1, 0)
        size += sum(_bare_size(e.data, e.signature) for e in envelopes.values())
        if blocks:
            size += 1 + len('"blocks":[]') + len(blocks) - 1 + sum(self._block_len(b) for b in blocks.values())
        return size

    def message(self, body: dict, embedded: bool = False):
        """The message a signed body holds. ``embedded``: named by digest inside another
        message, where a pre-prepare may come without its block (it names it by digest)."""
        kind = body.get("type")
        cls = KINDS.get(kind) if type(kind) is str else None
        if cls is None:
            raise MalformedMessage("unknown-type", repr(kind))
        fields = {k: v for k, v in body.items() if k not in ("type", "chain", "signer")}
        check_fields(kind, fields, BODIES[kind])
        try:
            if cls is PrePrepare:
                digest = fields.get("digest")
                fields["block"] = self.blocks.get(digest) if embedded else self._block(digest)
            elif cls is BlockReply:
                fields["block"] = self._block(fields.get("digest"))
            elif cls is ViewChange:
                fields["checkpoint_proof"] = tuple(self.ref(c) for c in fields["checkpoint_proof"])
                fields["prepared"] = tuple(
                    PreparedProof(self.ref(p["pre_prepare"]), tuple(self.ref(x) for x in p["prepares"]))
                    for p in fields["prepared"])
            elif cls is NewView:
                fields["view_changes"] = tuple(self.ref(v) for v in fields["view_changes"])
                fields["pre_prepares"] = tuple(self.ref(p) for p in fields["pre_prepares"])
            elif cls is Blocks:
                return self._blocks(fields["hashes"])
            return cls(**fields)
        except MalformedMessage:
            raise
        except ValueError as exc:  # the fields are well typed (above); a value the message refuses
            raise MalformedMessage("bad-field", f"{kind}: {exc}"[:200]) from None
        except (TypeError, KeyError) as exc:
            raise MalformedMessage("malformed", f"{kind}: {exc!r}") from None

    def _block(self, digest) -> Block:
        block = self.blocks.get(digest)
        if block is None:
            raise MalformedMessage("malformed", f"block {digest!r} is not attached")
        return block

    def _blocks(self, hashes) -> Blocks:
        entries = self.entries or []
        if len(hashes) != len(entries):
            raise MalformedMessage("malformed", "blocks: hashes and entries differ")
        out = []
        for digest, entry in zip(hashes, entries):
            block = decode_block(_require(entry, "block", dict), self.chain_id)
            if block.hash != digest:
                raise MalformedMessage("bad-block-hash", digest)
            certificate = _require(entry, "certificate", list)
            if len(certificate) > MAX_LIST_ITEMS:
                raise MalformedMessage("too-many-items", f"a certificate of {len(certificate)} COMMITs")
            out.append((block, tuple(self.envelope(c) for c in certificate)))
        return Blocks(tuple(out))


def decode_envelope(obj: dict, chain_id: str, block: Block | None = None) -> Signed:
    return _Decoder(chain_id, {block.hash: block} if block else {}).envelope(obj)


def decode_block(obj: dict, chain_id: str) -> Block:
    header_obj = _require(obj, "header", dict)
    check_fields("header", header_obj, HEADER)  # every type checked: nothing ill-typed reaches a replica
    header = BlockHeader(**header_obj)
    if "hash" in obj:
        check_value("block.hash", obj["hash"], DIGEST)
    txs_obj = _require(obj, "txs", list)
    if len(txs_obj) > MAX_BLOCK_REQUESTS:  # counted before any is decoded
        raise MalformedMessage("block-too-large", f"{len(txs_obj)} requests, at most {MAX_BLOCK_REQUESTS}")
    size = 0
    for t in txs_obj:
        size += len(_require(t, "data", str))
    if size > MAX_BLOCK_BYTES:
        raise MalformedMessage("block-too-large", f"{size} bytes of requests, at most {MAX_BLOCK_BYTES}")
    decoder = _Decoder(chain_id, {})
    txs = tuple(decoder.envelope(t) for t in txs_obj)
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
    if len(raw) > MAX_MESSAGE_BYTES:  # before parsing: the parser's work is bounded by this
        raise MalformedMessage("oversized", f"{len(raw)} bytes, at most {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedMessage("malformed", "not JSON") from None
    try:
        return decode_object(obj, chain_id)
    except MalformedMessage:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        # Whatever the shape of hostile bytes, the caller sees one kind of refusal. Every
        # input should meet a named check first: this reason counts the ones that did not
        # (the fuzz run, benchmarks/fuzz_decoder.py, requires none).
        raise MalformedMessage("decode-error", f"{type(exc).__name__}: {exc}"[:200]) from None


def decode_object(obj, chain_id: str) -> Signed:
    """The inverse of ``envelope_object``, or MalformedMessage."""
    return _decoder_for(obj, chain_id).envelope(obj)


def decode_unsigned(obj, chain_id: str):
    """The inverse of ``unsigned_object``, or MalformedMessage."""
    return _decoder_for(obj, chain_id).message(_require(obj, "message", dict))


def decode_proof(obj, chain_id: str) -> PreparedProof:
    """The inverse of ``proof_object``, or MalformedMessage."""
    decoder = _decoder_for(obj, chain_id)
    check_value("proof.pre_prepare", obj.get("pre_prepare"), DIGEST)
    check_value("proof.prepares", obj.get("prepares"), DIGESTS)
    try:
        return PreparedProof(decoder.ref(obj["pre_prepare"]), tuple(decoder.ref(p) for p in obj["prepares"]))
    except MalformedMessage:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise MalformedMessage("malformed", f"prepared proof: {exc!r}") from None


def _decoder_for(obj, chain_id: str) -> _Decoder:
    """A decoder holding an object's attachments: its blocks, envelopes and entries."""
    if type(obj) is not dict:
        raise MalformedMessage("wrong-type", f"an envelope must be an object, got {type(obj).__name__}")
    blocks = {}
    entries, envelopes = _bounded(obj, "entries"), _bounded(obj, "envelopes")
    attached = ([obj["block"]] if "block" in obj else []) + (_bounded(obj, "blocks") or [])
    for b in attached:
        block = decode_block(b, chain_id)
        blocks[block.hash] = block
    return _Decoder(chain_id, blocks, entries, envelopes)
