"""Exit codes shared by ``citychain run`` and ``citychain audit`` (README, "Exit codes").

A safety violation outranks a liveness failure: a run that forked exits 1 even if
it also stalled.
"""

OK = 0  # safety and liveness hold
UNSAFE = 1  # honest nodes hold different blocks at a height, or a ledger fails its checks
BAD_INPUT = 2  # the scenario, the arguments or the export cannot be used (click's usage errors too)
NOT_LIVE = 3  # safe, but a submitted transaction was never answered, or too late


def verdict(safe: bool, live: bool) -> int:
    if not safe:
        return UNSAFE
    return OK if live else NOT_LIVE
