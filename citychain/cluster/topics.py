"""The MQTT topic scheme of a chain, in one place: the transport publishes and subscribes
with these names, and the broker's ACL grants exactly these names (``grants``).

For chain C (docs/deployment.md, "Topics"):

- ``citychain/C/bcast/<sender>``: a consensus node's broadcast, one publish that the
  broker fans out; every consensus node reads ``citychain/C/bcast/+``.
- ``citychain/C/to/<dst>/<src>``: one message from src to dst; dst reads
  ``citychain/C/to/<dst>/+``. A client may send to one node this way too.
- ``citychain/C/req/<client>``: a client's signed request; consensus nodes read
  ``citychain/C/req/+``.
- ``citychain/C/status/<member>``: a node's signed status and commit notices; clients
  and the operator read ``citychain/C/status/+``.

The sender's name is always the last level, so the broker's ACL can pin a publisher to
its own name. The broker is not trusted with integrity: every payload is signed, and a
receiver still checks the signer against the genesis.
"""

from __future__ import annotations

from typing import NamedTuple

PREFIX = "citychain"
BCAST, TO, REQ, STATUS = "bcast", "to", "req", "status"
KINDS = (BCAST, TO, REQ, STATUS)

# Broker accounts: the genesis roles, and two that exist only at the broker.
CONSENSUS, OBSERVER, CLIENT = "consensus", "observer", "client"
OPERATOR, BRIDGE = "operator", "bridge"
ROLES = (CONSENSUS, OBSERVER, CLIENT, OPERATOR, BRIDGE)
OPERATOR_USER = "operator"


def check_name(name: str) -> str:
    """A chain id or member id must be one whole topic level."""
    if not name or any(c in name for c in "/+#\0") or name != name.strip() or name.startswith("$"):
        raise ValueError(f"not usable as an MQTT topic level: {name!r}")
    return name


def _topic(chain: str, *levels: str) -> str:
    return "/".join((PREFIX, check_name(chain), *levels))


def bcast(chain: str, sender: str) -> str:
    return _topic(chain, BCAST, check_name(sender))


def direct(chain: str, dst: str, src: str) -> str:
    return _topic(chain, TO, check_name(dst), check_name(src))


def request(chain: str, client: str) -> str:
    return _topic(chain, REQ, check_name(client))


def status(chain: str, member: str) -> str:
    return _topic(chain, STATUS, check_name(member))


def chain_filter(chain: str) -> str:
    """Everything of one chain: what a bridge carries."""
    return _topic(chain, "#")


class Grants(NamedTuple):
    """What one broker account may publish (``write``) and read (``read``): topic filters."""

    write: tuple[str, ...]
    read: tuple[str, ...]


def grants(chain: str, role: str, user: str) -> Grants:
    """The least each role needs; the broker's ACL is written from this and nothing else."""
    me = check_name(user)
    if role == CONSENSUS:
        return Grants(write=(bcast(chain, me), _topic(chain, TO, "+", me), status(chain, me)),
                      read=(_topic(chain, BCAST, "+"), _topic(chain, TO, me, "+"), _topic(chain, REQ, "+")))
    if role == OBSERVER:  # no vote, no broadcasts: it fetches blocks from nodes and may report its status
        return Grants(write=(_topic(chain, TO, "+", me), status(chain, me)),
                      read=(_topic(chain, TO, me, "+"),))
    if role == CLIENT:  # replies come as status notices, or point to point
        return Grants(write=(request(chain, me), _topic(chain, TO, "+", me)),
                      read=(_topic(chain, STATUS, "+"), _topic(chain, TO, me, "+")))
    if role == OPERATOR:  # watches; publishes nothing
        return Grants(write=(), read=(_topic(chain, STATUS, "#"),))
    if role == BRIDGE:  # a site broker carries the whole chain both ways
        return Grants(write=(chain_filter(chain),), read=(chain_filter(chain),))
    raise ValueError(f"unknown broker role {role!r}; one of {ROLES}")


def subscriptions(chain: str, role: str, user: str) -> tuple[str, ...]:
    """The filters an account subscribes to: everything it may read."""
    return grants(chain, role, user).read


def node_filters(chain: str, node: str) -> tuple[str, ...]:
    return subscriptions(chain, CONSENSUS, node)


def client_filters(chain: str, client: str) -> tuple[str, ...]:
    return subscriptions(chain, CLIENT, client)


class Route(NamedTuple):
    kind: str  # one of KINDS
    dst: str | None  # only for TO
    src: str


def parse(topic: str, chain: str | None = None) -> Route:
    """(kind, dst, src) of a topic of the scheme; ValueError for anything else, or another chain's."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != PREFIX or (chain is not None and parts[1] != chain):
        raise ValueError(f"not a topic of {'chain ' + repr(chain) if chain else 'citychain'}: {topic!r}")
    kind, rest = parts[2], parts[3:]
    if kind == TO and len(rest) == 2 and all(rest):
        return Route(TO, rest[0], rest[1])
    if kind in (BCAST, REQ, STATUS) and len(rest) == 1 and rest[0]:
        return Route(kind, None, rest[0])
    raise ValueError(f"not a topic of the scheme: {topic!r}")
