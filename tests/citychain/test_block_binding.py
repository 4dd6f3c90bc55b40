"""rev3: in the simulator a block travels as an object, never through the codec, so
nothing recomputes its hash from its header or its header's tx_root from its requests
(node/codec.py does both, with ``Block.create``, for a process). The execution memo and
the shared states are keyed by (state root, block.hash): a Byzantine primary that sends
the same header, hence the same hash, with different requests to different backups
makes honest nodes commit one hash over different transactions, and the memo then
hands a node the outcome of a block it does not hold."""

from consensus.block import Block
from consensus.messages import PrePrepare
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from node.byzantine import Equivocate


def _same_hash_fewer_requests(self, m):
    # The true header (so the true hash, which every vote names), one request fewer.
    lie = Block(m.block.header, m.block.requests[:-1], m.block.hash)
    return [PrePrepare(m.view, m.seq, lie.hash, lie)] if len(m.block.requests) > 1 else []


def test_a_block_whose_requests_do_not_match_its_header_is_refused(monkeypatch):
    monkeypatch.setattr(Equivocate, "other_story", _same_hash_fewer_requests)
    scenario = load_scenario("equivocation-4")
    data = scenario.model_dump()
    data["workload"]["transactions"], data["workload"]["rate_tps"] = 60, 400
    run = simulate(type(scenario).model_validate(data))
    honest = [n for n in run.nodes.values() if n.id not in run.plan.byzantine and hasattr(n.replica, "done")]
    by_hash: dict[str, set] = {}
    for node in honest:
        for e in node.ledger.entries:
            by_hash.setdefault(e.block.hash, set()).add(e.block.ids)
            # Every block an honest node holds matches its own header.
            assert Block.create(e.block.header, e.block.requests).hash == e.block.hash, (node.id, e.block.height)
            # ... and its receipts are for the requests it holds.
            assert [r.tx for r in e.receipts] == [r.digest for r in e.block.requests], (node.id, e.block.height)
    assert all(len(v) == 1 for v in by_hash.values())
    assert run.metrics.drops_by_reason()["bad-tx-root"] > 0  # the lie is refused, under the codec's reason


def test_a_fetched_block_not_bound_to_its_header_is_refused_before_the_replica():
    """The same lie where a NEW-VIEW's re-issued blocks now come from: a NEW-VIEW names
    them by digest (it carries no block to lie in), and a replica fetches a block it lacks
    with BLOCK-REQUEST. A BLOCK-REPLY whose requests do not match its header is refused
    as the codec would refuse it, before the replica sees it."""
    from consensus.block import BlockHeader, tx_root
    from consensus.messages import BlockReply, NewView, Request
    from citychain.sim.run import build
    from node.signing import Signer

    scenario = load_scenario("normal-4")
    run = build(scenario)
    g = run.genesis
    client = g.clients[0]
    csign = Signer(client.id, g.identities[client.id].key, g.chain_id)
    reqs = tuple(csign.sign(Request(i, "records", "put", {"key": f"k{i}", "value": "v"}, i)) for i in (1, 2))
    sender = g.replicas[1]
    nsign = Signer(sender, g.identities[sender].key, g.chain_id)
    header = BlockHeader(g.chain_id, 1, g.hash, tx_root(reqs), g.doc["state_root"], 1, sender, 5)
    lie = Block(header, reqs[:1], header.compute_hash())
    new_view = nsign.sign(NewView(1, (), (nsign.sign(PrePrepare(1, 1, lie.hash, lie)),)))
    assert [p.message.block for p in new_view.message.pre_prepares] == [None]
    target = run.nodes[g.replicas[2]]
    # It is fetching that digest (a BLOCK-REPLY for any other is refused unread,
    # unrequested-block: tests/node/test_block_reply_flood.py).
    from consensus.replica import BlockFetch
    target.replica.fetching[lie.hash] = BlockFetch(1, lie.hash, (sender,), None)
    seen = []
    original = target.replica.deliver
    target.replica.deliver = lambda env, t: seen.append(env) or original(env, t)
    target.on_message(nsign.sign(BlockReply(lie.hash, lie)), 1_000)
    assert target.metrics.drops[target.id]["bad-tx-root"] == 1
    assert seen == []
