"""The node process's transport, counting its broadcasts by message type.

The node's ``Metrics`` count publishes by type, and over a broker a broadcast is one
publish the broker fans out to the n - 1 other nodes, while a point-to-point send
(a retransmitted PRE-PREPARE, a forwarded request) is one publish for one receiver.
Status notices report both counts, so ``cluster load`` and ``cluster compare`` can
turn publishes into copies, the simulator's unit, exactly.
"""

from __future__ import annotations

from collections import Counter

from consensus.messages import Signed

from .transport import MqttTransport


class CountingTransport(MqttTransport):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.broadcasts: Counter[str] = Counter()  # kind -> broadcast publishes
        self.broadcast_bytes: Counter[str] = Counter()

    def broadcast(self, src: str, env: Signed, at: int) -> None:
        super().broadcast(src, env, at)
        kind = type(env.message).KIND
        self.broadcasts[kind] += 1
        self.broadcast_bytes[kind] += len(self._last[1])  # the payload just encoded for it
