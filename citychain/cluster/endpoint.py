"""Where and as whom a process connects to its broker."""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # TLS: trust this CA (the chain's) for the broker's certificate

    def tls_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def client_args(self) -> dict:
        # TCP_NODELAY: consensus messages are small and each waits on the one before;
        # Nagle's algorithm with delayed ACKs would hold many for tens of milliseconds.
        return {"hostname": self.host, "port": self.port, "username": self.username,
                "password": self.password, "tls_context": self.tls_context(),
                "socket_options": [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]}


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, as the CLI takes it; ValueError with what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port must be 1..65535, got {port!r}")
    return host.strip("[]"), int(port)


def read_credentials(path: Path) -> tuple[str, str]:
    """(username, password) from a node's or client's broker.json."""
    doc = json.loads(Path(path).read_text())
    return doc["username"], doc["password"]
