"""Exit codes shared by ``citychain run``, ``audit`` and ``query`` (README, "Exit codes";
docs/audit.md).

The most serious finding decides: a safety violation outranks an export that fails
its checks, which outranks a liveness failure. ``run`` judges the simulated nodes in
memory, so it never exits ``INVALID``; ``audit`` and ``query`` judge an export.
"""

OK = 0  # every check holds: safe, valid, live
UNSAFE = 1  # two different blocks committed at one height (valid commit certificates for both; in a run: honest
#             nodes hold different blocks, or an honest node's ledger fails its checks)
BAD_INPUT = 2  # the scenario, the arguments or the directory cannot be used; an export with nothing to audit
NOT_LIVE = 3  # safe, but a submitted transaction was never answered, or too late
INVALID = 4  # the export fails a check: a ledger (hash link, encoding, signature, certificate, receipt, state root)
#              or a member certificate

NAMES = {OK: "ok", UNSAFE: "unsafe", BAD_INPUT: "bad-input", NOT_LIVE: "not-live", INVALID: "invalid"}


def verdict(safe: bool, live: bool, valid: bool = True) -> int:
    if not safe:
        return UNSAFE
    if not valid:
        return INVALID
    return OK if live else NOT_LIVE
