"""World state roots and block execution."""

from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import Request
from apps.records import Records
from node.execution import Executor
from node.identity import derive_key
from node.signing import Signer
from node.state import WorldState, empty_state_root


def test_root_depends_on_content_not_write_order():
    a, b = WorldState(), WorldState()
    a.apply((("x", '"1"'), ("y", '"2"')))
    b.apply((("y", '"2"'),))
    b.apply((("x", '"1"'),))
    assert a.root() == b.root() != empty_state_root()
    b.apply((("y", None),))
    assert b.root() != a.root()
    b.apply((("y", '"2"'),))
    assert b.root() == a.root()


def block_of(requests, height=1):
    header = BlockHeader("unit", height, "00" * 32, tx_root(requests), "11" * 32, 0, "node-00", height)
    return Block.create(header, requests)


def test_execution_is_atomic_per_transaction_and_records_reasons():
    client = Signer("client-0", derive_key(0, "unit", "client-0"), "unit")
    reqs = (
        client.sign(Request(1, "records", "put", {"key": "a", "value": "1"}, 1)),
        client.sign(Request(2, "records", "delete", {"key": "nope"}, 2)),
        client.sign(Request(3, "lottery", "draw", {}, 3)),
        client.sign(Request(4, "records", "put", {"key": "a", "value": "2"}, 4)),
    )
    state = WorldState()
    ex = Executor({"records": Records()}, {"client-0": ("dept", "client")}, state)
    outcome = ex.execute(block_of(reqs))
    assert [r.ok for r in outcome.receipts] == [True, False, False, True]
    assert outcome.receipts[1].reason == "no record 'nope' for dept"
    assert outcome.receipts[2].reason == "unknown-app: lottery"
    assert state.get("records/dept/a") == {"value": "2", "version": 2, "author": "client-0", "height": 1}


def test_memo_gives_the_same_state_as_executing():
    client = Signer("client-0", derive_key(0, "unit", "client-0"), "unit")
    reqs = tuple(client.sign(Request(i, "records", "put", {"key": f"k{i}", "value": "v"}, i)) for i in range(1, 30))
    memo = {}
    roots = []
    for _ in range(3):
        state = WorldState()
        ex = Executor({"records": Records()}, {"client-0": ("dept", "client")}, state, memo)
        ex.execute(block_of(reqs))
        roots.append(state.root())
        state.apply((("extra", '"x"'),))  # later writes still rehash the buckets touched by the memo
        roots.append(state.root())
    fresh = WorldState()
    Executor({"records": Records()}, {"client-0": ("dept", "client")}, fresh).execute(block_of(reqs))
    fresh_root = fresh.root()
    fresh.apply((("extra", '"x"'),))
    assert roots == [fresh_root, fresh.root()] * 3
