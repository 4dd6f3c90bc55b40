"""What a node needs from the world around it: the simulator and MQTT both provide it."""

from __future__ import annotations

from typing import Protocol

from consensus.messages import Signed


class Transport(Protocol):
    def broadcast(self, src: str, env: Signed, at: int) -> None:
        """Send ``env`` to every other consensus node; it leaves ``src`` at time ``at``."""

    def send(self, src: str, dst: str, env: Signed, at: int) -> None: ...

    def start_timer(self, node: str, name: str, at: int) -> None:
        """Fire ``node.on_timer(name)`` at ``at`` unless restarted or cancelled first."""

    def cancel_timer(self, node: str, name: str) -> None: ...

    def cancel_all_timers(self, node: str) -> None:
        """The node's process died: none of its timers fires any more."""
