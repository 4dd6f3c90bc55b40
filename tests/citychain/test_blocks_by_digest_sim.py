"""Blocks by digest in the simulator, through the nodes (docs/messages.md): the same
replica code as tests/consensus/test_blocks_by_digest.py, with the nodes' checks, the
membership's roles and the network model in the loop."""

from tests.citychain.hostile_world import MS, simulate, small

LAGGARD = "node-03"


def test_a_node_that_missed_a_prepared_block_fetches_it_by_digest_after_the_primary_crashes(monkeypatch):
    """From 1.0 s every COMMIT is lost and node-03 gets no PRE-PREPARE: the next block is
    prepared by node-01 and node-02 only, and commits nowhere. The primary crashes at
    1.2 s; the NEW-VIEW re-issues that block by digest, node-03 fetches it, and the
    chain goes on with every honest node agreeing."""
    lossy = (1000 * MS, 1200 * MS)
    seen = {"dropped-pre-prepares": 0}

    def inject(run):
        net = run.network
        for nid, handler in list(net.handlers.items()):
            def filtered(env, at, *rest, _nid=nid, _handler=handler):
                kind = env.message.KIND
                if lossy[0] <= at < lossy[1] and (
                        kind == "commit" or (_nid == LAGGARD and kind == "pre-prepare")):
                    seen["dropped-pre-prepares"] += kind == "pre-prepare"
                    return
                _handler(env, at, *rest)
            filtered.__self__ = getattr(handler, "__self__", None)
            net.handlers[nid] = filtered
        net._changed()

    run = simulate(small("taihu", transactions=300, faults=[{"at_ms": 1200, "crash": "primary"}]), monkeypatch,
                   inject=inject)
    assert seen["dropped-pre-prepares"] > 0
    sent = run.metrics.messages
    assert sent["block-request"] > 0 and sent["block-reply"] > 0
    chains = {n: [e.block.hash for e in run.nodes[n].ledger.entries] for n in ("node-01", "node-02", LAGGARD)}
    assert len(set(map(tuple, chains.values()))) == 1, "honest ledgers differ"
    assert len(chains[LAGGARD]) > 0
    assert not run.metrics.drops.get(LAGGARD, {}).get("unexpected-message")
