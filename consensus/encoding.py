"""Canonical encoding: the exact bytes that are hashed and signed.

Canonical JSON: UTF-8, keys sorted, no insignificant white space, non-ASCII
escaped as \\uXXXX. Only str, int, bool, None, list and dict appear; floats are
refused because their text form is not canonical across languages.
"""

import hashlib
import json

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical(obj) -> bytes:
    return _encoder.encode(obj).encode("ascii")


def check_canonical_value(value, path: str = "value") -> None:
    """Raise ValueError if ``value`` holds something canonical JSON does not allow."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        raise ValueError(f"{path}: floats are not allowed in signed data (use an integer)")
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_canonical_value(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings, got {key!r}")
            check_canonical_value(item, f"{path}.{key}")
        return
    raise ValueError(f"{path}: {type(value).__name__} is not allowed in signed data")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
