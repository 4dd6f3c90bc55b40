"""The MQTT topic scheme (docs/deployment.md): who publishes where, who reads what.

Every topic names its publisher last, so the broker's ACL can let a user publish
only under its own name. (Temporary: the broker work brings the full module.)
"""

from __future__ import annotations

ROOT = "citychain"


def bcast(chain: str, sender: str) -> str:
    return f"{ROOT}/{chain}/bcast/{sender}"


def direct(chain: str, dst: str, src: str) -> str:
    return f"{ROOT}/{chain}/to/{dst}/{src}"


def request(chain: str, client: str) -> str:
    return f"{ROOT}/{chain}/req/{client}"


def status(chain: str, node: str) -> str:
    return f"{ROOT}/{chain}/status/{node}"


def node_filters(chain: str, node: str) -> list[str]:
    return [f"{ROOT}/{chain}/bcast/+", f"{ROOT}/{chain}/to/{node}/+", f"{ROOT}/{chain}/req/+"]


def client_filters(chain: str) -> list[str]:
    return [f"{ROOT}/{chain}/status/+"]


def parse(topic: str) -> tuple[str, str | None, str]:
    """(kind, dst or None, src) of a topic in the scheme; ValueError otherwise."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == ROOT and parts[2] in ("bcast", "req", "status"):
        return parts[2], None, parts[3]
    if len(parts) == 5 and parts[0] == ROOT and parts[2] == "to":
        return "to", parts[3], parts[4]
    raise ValueError(f"not a citychain topic: {topic!r}")


def observer_filters(chain: str, node: str) -> list[str]:
    """An observer takes no part in consensus: it hears only what is sent to it (state transfer)."""
    return [f"{ROOT}/{chain}/to/{node}/+"]
