"""Issue 12: a replayed client transaction never executes twice, across view changes,
restarts and state transfer.

Every run records each signed request the workload sends and sends all of them again,
to every consensus node, at chosen virtual times: while the fault is happening and after
it. Each ledger must hold each transaction exactly once, and the replays must be refused
by reason (``duplicate-request``: the replica has executed it, holds it in a block in
flight, or waits to propose it)."""


from tests.citychain.hostile_world import MS, Submissions, ledger_digests, once_everywhere, simulate, small


def replayed(monkeypatch, faults, times, to=None):
    subs = {}

    def inject(run):
        subs["s"] = s = Submissions(run)
        for t in times:
            s.replay_at(t, to)

    run = simulate(small("taihu", faults=faults), monkeypatch, inject=inject)
    submitted = set(subs["s"].envelopes)
    assert len(submitted) == run.scenario.workload.transactions
    return run, once_everywhere(run, submitted)


def test_a_replay_never_executes_twice_across_a_view_change(monkeypatch):
    """The primary crashes at 0.3 s; every request is sent again to every replica during
    the view change (0.5 s, 0.9 s), once the new primary works (1.5 s) and after the
    workload (3 s). Requests in blocks the old primary left prepared are re-issued by the
    NEW-VIEW and also sit in the new primary's pool: it must not propose them again."""
    run, s = replayed(monkeypatch, [{"at_ms": 300, "crash": "primary"}],
                      [500 * MS, 900 * MS, 1500 * MS, 3000 * MS])
    assert s["view_changes"] >= 1
    assert s["dropped"]["duplicate-request"] > 0


def test_a_replay_never_executes_twice_after_the_primary_restarts(monkeypatch):
    """The primary crashes at 0.6 s and restarts from its store at 0.65 s, before any
    backup times it out, so it proposes again in view 0 with its pool of requests gone
    and its memory of what executed rebuilt from its ledger. Everything is replayed to it
    (and to all) just after the restart and at the end."""
    run, s = replayed(monkeypatch, [{"at_ms": 600, "crash": "node-0"}, {"at_ms": 650, "recover": "node-0"}],
                      [651 * MS, 1000 * MS, 3000 * MS])
    restarted = run.nodes["node-00"]
    done = restarted.replica.done  # a set, or the simulator's shared index: membership is what counts
    assert all(digest in done for digest in ledger_digests(run, "node-00"))
    assert run.metrics.drops["node-00"]["duplicate-request"] > 0


def test_a_replay_never_executes_twice_at_a_node_that_caught_up_by_state_transfer(monkeypatch):
    """node-03 is down from 0.2 s to 2.5 s while the chain commits most of the workload;
    it restarts and fetches the blocks it missed. Everything is replayed to it before it
    has caught up (2.5 s + 1 ms: it takes the requests into its pool and relays them to the
    primary, which refuses them) and after (4 s: it refuses them itself)."""
    run, s = replayed(monkeypatch, [{"at_ms": 200, "crash": "node-3"}, {"at_ms": 2500, "recover": "node-3"}],
                      [2501 * MS, 4000 * MS], to=["node-03"])
    assert s["node_status"]["node-03"]["blocks_fetched"] > 0
    assert run.metrics.drops["node-03"]["duplicate-request"] > 0
    assert not run.nodes["node-03"].replica.pending  # the replays taken before catching up are gone


def test_a_primary_re_proposing_an_executed_request_is_refused(monkeypatch):
    """A Byzantine primary proposes, at the next height, a block that extends the chain
    correctly but holds a transaction already executed: every backup refuses it
    (``replayed-request``) and nothing executes twice."""
    from consensus.block import Block, BlockHeader, tx_root
    from consensus.messages import PrePrepare
    from node.signing import Signer

    def inject(run):
        def go(_arg, now):
            head = run.nodes["node-01"].ledger
            old = head.entries[0].block.requests[0]
            header = BlockHeader(run.genesis.chain_id, head.height + 1, head.head_hash, tx_root((old,)),
                                 run.nodes["node-01"].executor.state.root(), 0, "node-00",
                                 run.membership.epoch_ns + now)  # block time: calendar
            block = Block.create(header, (old,))
            key = run.genesis.identities["node-00"].key
            env = Signer("node-00", key, run.genesis.chain_id).sign(PrePrepare(0, block.height, block.hash, block))
            for backup in ("node-01", "node-02", "node-03"):
                run.nodes[backup].on_message(env, now)
        run.engine.at(3000 * MS, go, None)

    run = simulate(small("taihu"), monkeypatch, inject=inject)
    for backup in ("node-01", "node-02", "node-03"):
        assert run.metrics.drops[backup]["replayed-request"] == 1
        digests = ledger_digests(run, backup)
        assert len(digests) == len(set(digests)) == run.scenario.workload.transactions
