import pytest

from apps.base import Rejected, Tx


class MemoryState:
    """A plain dict standing in for the node's transactional view."""

    def __init__(self):
        self.d = {}

    def get(self, key, default=None):
        return self.d.get(key, default)

    def put(self, key, value):
        self.d[key] = value

    def delete(self, key):
        self.d.pop(key, None)


class Caller:
    def __init__(self, app):
        self.app = app
        self.state = MemoryState()
        self.height = 0

    def __call__(self, who, op, at=1_000, **args):
        """``who`` (an organisation's clerk) sends ``op`` with ``args`` at time ``at``."""
        self.height += 1
        return self.app.execute(Tx(f"tx{self.height}", f"{who}-clerk", who, "client", op, args, self.height, at),
                                self.state)

    def refused(self, who, op, match, **args):
        with pytest.raises(Rejected, match=match):
            self(who, op, **args)


@pytest.fixture
def caller():
    return Caller
