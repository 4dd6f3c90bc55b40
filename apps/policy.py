"""Who may do what: endorsement policies over organisations, as written in scenarios.

    "any of [housing-fund-centre]"      one of these organisations
    "2 of [court, notary, police]"      two different ones of these must approve
    "all of [tax, market-regulation]"   every one of them must approve
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import Rejected, StateView, Tx

_POLICY = re.compile(r"^\s*(any|all|[1-9][0-9]*)\s+of\s+\[([^\]]*)\]\s*$")


@dataclass(frozen=True, slots=True)
class Policy:
    threshold: int
    orgs: frozenset[str]
    text: str

    @classmethod
    def parse(cls, text) -> "Policy":
        match = _POLICY.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"policy {text!r} is not 'any of [org, ...]', 'N of [org, ...]' or 'all of [...]'")
        orgs = frozenset(o.strip() for o in match.group(2).split(",") if o.strip())
        if not orgs:
            raise ValueError(f"policy {text!r} names no organisation")
        kind = match.group(1)
        threshold = 1 if kind == "any" else len(orgs) if kind == "all" else int(kind)
        if threshold > len(orgs):
            raise ValueError(f"policy {text!r} needs {threshold} of only {len(orgs)} organisations")
        return cls(threshold, orgs, text.strip())

    def check(self, tx: Tx, what: str) -> None:
        if tx.org not in self.orgs:
            raise Rejected(f"{tx.org} may not {what}: policy is {self.text}")

    def approve(self, state: StateView, action: str, tx: Tx, what: str) -> bool:
        """Record ``tx.org``'s approval of ``action``; True once the policy is met.

        With a threshold of one the first authorised organisation suffices; otherwise
        approvals are kept on chain until enough different organisations agree.
        """
        self.check(tx, what)
        if self.threshold == 1:
            return True
        key = f"approvals/{action}"
        approvals = state.get(key) or {"orgs": [], "first_height": tx.height}
        if tx.org in approvals["orgs"]:
            raise Rejected(f"{tx.org} already approved {what}")
        approvals["orgs"] = sorted(approvals["orgs"] + [tx.org])
        if len(approvals["orgs"]) >= self.threshold:
            state.delete(key)
            return True
        state.put(key, approvals)
        return False


def settings(config: dict | None, allowed: tuple[str, ...]) -> dict:
    """An app's settings from the scenario, refusing keys it does not know."""
    config = dict(config or {})
    unknown = set(config) - set(allowed)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {', '.join(allowed) or 'none'}")
    return config


def policies(config: dict, field: str, default: str | None = None) -> dict[str, Policy]:
    """Parse a mapping of name -> policy text from an app's settings."""
    raw = config.get(field)
    if raw is None:
        if default is None:
            raise ValueError(f"{field}: required")
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{field}: must map names to policies")
    out = {}
    for name, text in raw.items():
        try:
            out[name] = Policy.parse(text)
        except ValueError as exc:
            raise ValueError(f"{field}.{name}: {exc}") from None
    return out


def policy(config: dict, field: str, default: str) -> Policy:
    try:
        return Policy.parse(config.get(field, default))
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def text(args: dict, name: str, max_len: int) -> str:
    """An optional free-text argument: its first ``max_len`` characters if it is a
    string, else (absent, or not a string) the empty string."""
    value = args.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def require(args: dict, name: str, kind=str, max_len: int = 256):
    value = args.get(name)
    if kind is str:
        if not isinstance(value, str) or not 0 < len(value) <= max_len:
            raise Rejected(f"{name} must be a string of 1..{max_len} characters")
    elif kind is int:
        if type(value) is not int or value < 0:
            raise Rejected(f"{name} must be a non-negative integer")
    elif not isinstance(value, kind):
        raise Rejected(f"{name} must be a {kind.__name__}")
    return value
