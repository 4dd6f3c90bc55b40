"""Measuring the real cost of the cryptography the CPU model charges for."""

from __future__ import annotations

import time

from consensus.encoding import canonical
from node.identity import derive_key


def measure(samples: int = 2000) -> tuple[float, float]:
    """(sign, verify) in microseconds for a typical vote-sized message."""
    key = derive_key(0, "calibrate", "node")
    public = key.public_key()
    data = canonical({"chain": "calibrate", "digest": "ab" * 32, "seq": 12, "signer": "node-12",
                      "type": "prepare", "view": 0})
    start = time.perf_counter()
    for _ in range(samples):
        sig = key.sign(data)
    sign = (time.perf_counter() - start) / samples
    start = time.perf_counter()
    for _ in range(samples):
        public.verify(sig, data)
    verify = (time.perf_counter() - start) / samples
    return sign * 1e6, verify * 1e6
