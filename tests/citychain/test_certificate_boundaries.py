"""Adversarial review (rev2) of certificates at the node: validity boundaries,
CRL handling, roles and replay interleavings the branch's tests do not cover."""

from __future__ import annotations

from consensus.messages import Request
from node.identity import NOT_BEFORE
from node.signing import Signer
from tests.citychain.hostile_world import MS, at, reissue, simulate, small


def _spare_client(run):
    """Take the last client out of the workload (it stays a member of the genesis)."""
    return run.genesis.clients.pop()


def test_a_request_accepted_just_before_its_clients_expiry_does_not_strand_the_backup(monkeypatch):
    """Interleaving: client X's certificate expires at 1 s. X's request reaches backup
    node-02 at 1 s - 50 us (valid there: accepted into its pool); node-02 forwards it to the
    primary, where it arrives after 1 s and is judged again on time: refused as expired.
    Requests inside blocks are not judged on time, but a forwarded request is, so no
    other replica will ever order it; node-02 waits on it for good, times out, asks for a
    view change nobody joins, and drops out of consensus for the rest of the run: an
    honest node lost to a validity boundary (n = 4: the chain is left with no fault margin)."""
    box = {}

    def tweak(g):
        box["victim"] = victim = g.clients[-1].id
        return reissue(g, victim, valid=(NOT_BEFORE, at(1)))

    def inject(run):
        victim = _spare_client(run)
        assert victim.id == box["victim"]
        env = Signer(victim.id, run.genesis.identities[victim.id].key, run.genesis.chain_id).sign(
            Request(1, "records", "put", {"key": "rev2", "value": "boundary"}, 999 * MS))
        box["env"] = env
        run.engine.at(1000 * MS - 50_000, lambda _a, now: run.nodes["node-02"].on_message(env, now), None)

    run = simulate(small(transactions=400, rate_tps=100), monkeypatch, tweak=tweak, inject=inject)
    drops = {n: dict(run.metrics.drops[n]) for n in run.genesis.replicas}
    assert drops["node-00"].get("certificate-expired", 0) >= 1, drops  # the forwarded copy, refused
    stuck = run.nodes["node-02"].replica
    views = {n: (run.nodes[n].replica.view, run.nodes[n].replica.active) for n in run.genesis.replicas}
    late = run.membership.epoch_ns + 2500 * MS  # block timestamps are calendar time
    late_votes = sum(1 for e in run.nodes["node-00"].ledger.entries
                     if e.block.header.timestamp > late and any(c.signer == "node-02" for c in e.certificate))
    late_blocks = sum(1 for e in run.nodes["node-00"].ledger.entries if e.block.header.timestamp > late)
    assert stuck.active and stuck.view == run.nodes["node-00"].replica.view, (views, drops["node-02"])
    assert late_blocks == 0 or late_votes > 0, (late_votes, late_blocks, views)
    assert drops["node-02"].get("request-certificate-lapsed") == 1, drops["node-02"]


def test_a_revoked_clients_request_signed_after_revocation_is_not_ordered_by_a_byzantine_primary(monkeypatch):
    """client X is revoked from 1 s (the CA's CRL; X.509 dates are whole seconds). At 3 s, long after, the holder of X's
    key (the reason to revoke it) signs a new request, and a Byzantine primary (node-00)
    puts it in a block that extends the chain correctly, dated now (3 s). Every backup
    judges the request at the block's date (docs/messages.md, "Block time"): revoked, so
    each refuses the pre-prepare, and the chain commits every other transaction. Dated
    before the revocation instead (0.9 s), the block is refused as too old (more than
    max_clock_skew_ms + view_change_timeout_ms, 1.5 s, behind the backups' clocks)."""
    from citychain.genesis import SIM_EPOCH
    from citychain.scenario import Revocation
    from citychain.summary import summarize
    from consensus.block import Block, BlockHeader, tx_root
    from consensus.messages import PrePrepare
    from node.genesis import calendar_ns

    box = {}
    epoch = calendar_ns(SIM_EPOCH)

    def inject(run):
        victim = _spare_client(run)
        box["victim"] = victim.id

        def go(dated):
            def at_time(_arg, now):
                head = run.nodes["node-01"].ledger
                env = Signer(victim.id, run.genesis.identities[victim.id].key, run.genesis.chain_id).sign(
                    Request(1 + dated, "records", "put", {"key": "rev2", "value": "after-revocation"}, now))
                box.setdefault("digests", []).append(env.digest)
                header = BlockHeader(run.genesis.chain_id, head.height + 1, head.head_hash, tx_root((env,)),
                                     run.nodes["node-01"].executor.state.root(), 0, "node-00", epoch + dated)
                block = Block.create(header, (env,))
                key = run.genesis.identities["node-00"].key
                pre = Signer("node-00", key, run.genesis.chain_id).sign(PrePrepare(0, block.height, block.hash, block))
                for backup in ("node-01", "node-02", "node-03"):
                    run.nodes[backup].on_message(pre, now)
            return at_time
        run.engine.at(3000 * MS, go(3000 * MS), None)
        run.engine.at(3100 * MS, go(900 * MS), None)

    scenario = small("taihu")
    clients = scenario.workload.clients
    scenario = scenario.model_copy(update={"revocations": [Revocation(member=f"client-{clients - 1}", at_ms=1000)]})
    run = simulate(scenario, monkeypatch, inject=inject)
    assert run.membership.certificate_refusal(box["victim"], 3000 * MS) == "certificate-revoked"
    assert run.membership.certificate_refusal(box["victim"], 900 * MS) is None
    for backup in ("node-01", "node-02", "node-03"):
        digests = {r.digest for e in run.nodes[backup].ledger.entries for r in e.block.requests}
        assert not digests & set(box["digests"]), f"{backup} executed a request signed after its client's revocation"
        drops = run.metrics.drops[backup]
        assert drops.get("bad-request-in-block: certificate-revoked") == 1, dict(drops)
        assert drops.get("timestamp-too-old") == 1, dict(drops)
    s = summarize(run, "revoked")
    assert s["safety_violations"] == 0 and s["agreement"] is True
    assert s["committed_tx"] == s["submitted_tx"], s["dropped"]


def _share_key(genesis, owner: str, member: str) -> None:
    """The CA issues ``member`` a certificate over ``owner``'s public key."""
    import dataclasses

    from node.identity import cert_pem

    key = genesis.identities[owner].key
    ident = genesis.identities[member]
    cert = genesis.ca.issue(member, ident.org, ident.role, key.public_key())
    for entry in genesis.doc["members"] + genesis.doc["clients"]:
        if entry["id"] == member:
            entry["cert"] = cert_pem(cert)
    genesis.identities[member] = dataclasses.replace(ident, cert=cert, key=key)


def test_one_key_under_two_consensus_ids_is_a_genesis_problem():
    """The same Ed25519 key certified as node-02 and node-03 gives its holder two votes of
    a quorum of three (n = 4): with one more faulty node that is f + 1 = 2 > f. Neither
    the node (membership_from_doc) nor the auditor (genesis_problems) notices."""
    from citychain.genesis import build_genesis
    from node.genesis import genesis_problems

    g = build_genesis(small())
    _share_key(g, "node-02", "node-03")
    problems = genesis_problems(g.doc, at(1))
    assert any("key" in p for p in problems), problems


def test_one_key_as_a_consensus_node_and_a_client_is_a_genesis_problem():
    """A consensus node's key also certified as a client's: the node signs client requests
    under the client's id, which the role table (a node signing a request is refused)
    exists to forbid."""
    from citychain.genesis import build_genesis
    from node.genesis import genesis_problems

    g = build_genesis(small())
    _share_key(g, "node-02", g.clients[0].id)
    problems = genesis_problems(g.doc, at(1))
    assert any("key" in p for p in problems), problems


def test_a_chain_that_outlived_a_members_certificate_still_audits(monkeypatch, tmp_path):
    """node-03's certificate expires at 1 s of a 2 s run. Every honest node accepted the
    blocks node-03 voted on before that (docs/messages.md: "a committed block stays valid
    after its signers' certificates expire"), and state transfer accepts their
    certificates. The auditor, judging every certificate's validity at one date (by default
    now; here the run's end), refuses the whole genesis, so not one ledger is read: the
    chain the nodes built cannot be audited once any member's certificate has expired."""
    from citychain.audit import audit_export
    from citychain.export import write_run
    from citychain.summary import summarize

    run = simulate(small(), monkeypatch, tweak=lambda g: reissue(g, "node-03", valid=(NOT_BEFORE, at(1))))
    write_run(tmp_path / "out", run, summarize(run, "expired"))
    report = audit_export(tmp_path / "out", at=at(3))
    assert report.genesis_trusted, report.member_problems
    assert list(report.expired) == ["node-03"] and report.to_dict()["expired_certificates"] == report.expired
    assert report.valid and report.safe, report.reasons()


def test_a_verdict_cached_while_valid_does_not_pass_the_same_envelope_after_revocation(monkeypatch):
    """node-02 is revoked from 1 s. One envelope object (the simulator shares it, and the
    membership caches its verdict) is delivered to node-01 at 0.5 s and again at 1.5 s:
    passed the first time, refused as revoked the second; so is a fresh copy of the same
    bytes through the content-keyed cache of a process's membership."""
    from citychain.scenario import Revocation
    from consensus.messages import Prepare
    from node.codec import decode, encode
    from node.genesis import calendar_ns, membership_from_doc
    from citychain.genesis import SIM_EPOCH

    seen = {}

    def inject(run):
        env = Signer("node-02", run.genesis.identities["node-02"].key, run.genesis.chain_id).sign(
            Prepare(0, 10_000, "ab" * 32))

        def deliver(label):
            def go(_a, now):
                before = run.metrics.drops["node-01"].get("certificate-revoked", 0)
                run.nodes["node-01"].on_message(env, now)
                seen[label] = run.metrics.drops["node-01"].get("certificate-revoked", 0) - before
            return go
        run.engine.at(500 * MS, deliver("before"), None)
        run.engine.at(1500 * MS, deliver("after"), None)
        seen["env"] = env

    scenario = small().model_copy(update={"revocations": [Revocation(member="node-2", at_ms=1000)]})
    run = simulate(scenario, monkeypatch, inject=inject)
    assert seen["before"] == 0 and seen["after"] == 1, seen
    process = membership_from_doc(run.genesis.doc, cache_limit=64, crl=run.genesis.crl,
                                  epoch_ns=calendar_ns(SIM_EPOCH))
    first = seen["env"]
    assert process.authenticate(first) is None and process.certificate_refusal("node-02", 500 * MS) is None
    copy = decode(encode(first), run.genesis.chain_id)
    assert copy is not first
    assert process.authenticate(copy) is None  # the content cache passes the signature ...
    assert process.certificate_refusal(copy.signer, 1500 * MS) == "certificate-revoked"  # ... never the time


def _roles_membership():
    from citychain.genesis import build_genesis

    g = build_genesis(small())
    return g, g.membership()


def _messages():
    from consensus.messages import Checkpoint, Commit, NewViewRequest, Prepare, ViewChange
    from node.sync_messages import Fetch

    return {"prepare": Prepare(0, 1, "ab" * 32), "commit": Commit(0, 1, "ab" * 32),
            "checkpoint": Checkpoint(8, "ab" * 32, "cd" * 32), "view-change": ViewChange(1, 0, (), ()),
            "new-view-request": NewViewRequest(1), "fetch": Fetch(1, 2),
            "request": Request(1, "records", "put", {"key": "k", "value": "v"}, 1)}


ROLE_CASES = [("observer-00", k, k == "fetch") for k in _messages()] + \
             [("client", k, k == "request") for k in _messages()] + \
             [("node-01", k, k != "request") for k in _messages()]


def test_every_role_may_sign_only_its_own_kinds():
    """An observer's PREPARE, COMMIT, CHECKPOINT, VIEW-CHANGE or NEW-VIEW request; a
    client's consensus message of any kind; a node's client request: each unauthorised."""
    g, membership = _roles_membership()
    msgs = _messages()
    for who, kind, allowed in ROLE_CASES:
        member = g.clients[0].id if who == "client" else who
        env = Signer(member, g.identities[member].key, g.chain_id).sign(msgs[kind])
        verdict = membership.authenticate(env)
        assert (verdict is None) == allowed, (member, kind, verdict)
        if not allowed:
            assert verdict == "unauthorised-role", (member, kind, verdict)


def test_a_consensus_message_in_a_requests_place_in_a_block_is_refused():
    """A PREPARE signed by node-01 (valid for its role) placed among a block's transactions."""
    from consensus.block import Block, BlockHeader, tx_root
    from node.checker import ChainChecker

    g, membership = _roles_membership()
    env = Signer("node-01", g.identities["node-01"].key, g.chain_id).sign(_messages()["prepare"])
    header = BlockHeader(g.chain_id, 1, g.hash, tx_root((env,)), g.doc["state_root"], 0, "node-00", 1)
    block = Block.create(header, (env,))
    assert membership.check_block(block)[0] == "not-a-request"
    problems = ChainChecker(membership, g.hash, set(g.replicas)).check_block(block)
    assert problems and "not a request" in problems[0], problems


def test_a_revocation_landing_between_the_commits_of_one_block_leaves_no_node_behind(monkeypatch):
    """node-03 is revoked at 1 s and node-02 crashes at 1 s (back at 1.5 s): for the blocks
    in flight at 1 s, node-03's COMMIT counts at the nodes it reached before 1 s and not
    at the others, and without node-02 it decides whether a quorum exists. A node that
    committed with it and a node that did not must agree in the end: the one left behind
    fetches the block with a certificate holding node-03's COMMIT, which state transfer
    takes (votes inside a certificate are not judged on time)."""
    from citychain.scenario import Revocation
    from citychain.summary import audit_run, summarize

    scenario = small(transactions=300, rate_tps=150, faults=[{"at_ms": 1000, "crash": "node-2"},
                                                             {"at_ms": 1500, "recover": "node-2"}])
    scenario = scenario.model_copy(update={"revocations": [Revocation(member="node-3", at_ms=1000)]})
    run = simulate(scenario, monkeypatch)
    s = summarize(run, "boundary")
    assert s["safety_violations"] == 0 and s["agreement"] is True
    assert s["committed_tx"] == s["submitted_tx"], s["dropped"]
    chains = {n: [e.block.hash for e in run.nodes[n].ledger.entries] for n in ("node-00", "node-01", "node-02")}
    assert len({tuple(c) for c in chains.values()}) == 1
    assert audit_run(run).safety_violations == []
    assert s["dropped"].get("certificate-revoked", 0) > 0


def test_a_run_with_revocations_is_the_same_under_any_hash_seed(tmp_path):
    """(scenario, seed) decide the run: two processes with other PYTHONHASHSEEDs write the
    same export, byte for byte, but for wall-clock seconds."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    scenario = tmp_path / "rev.yaml"
    scenario.write_text("base: taihu\nnodes: 4\nworkload:\n  transactions: 150\n  rate_tps: 150\n"
                        "faults:\n  - {at_ms: 400, crash: primary}\n"
                        "revocations:\n  - {member: node-3, at_ms: 700}\n  - {member: client-1, at_ms: 500}\n")
    outs = []
    for hs in ("1", "4242"):
        out = tmp_path / f"out{hs}"
        env = dict(os.environ, PYTHONHASHSEED=hs)
        subprocess.run([sys.executable, "-m", "citychain.cli", "run", str(scenario), "--out", str(out),
                        "--no-trace", "--no-progress", "--json"], env=env, capture_output=True, timeout=300)
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    for rel in files:
        a, b = (Path(o, rel).read_bytes() for o in outs)
        if rel.name in ("summary.json", "report.html"):
            a, b = (b"\n".join(l for l in x.split(b"\n") if b"wall_seconds" not in l) for x in (a, b))
        assert a == b, rel


def test_a_revocation_landing_between_a_blocks_pre_prepare_and_its_commit_leaves_the_nodes_agreed(monkeypatch):
    """Client X's request reaches the primary at 1 s and is proposed. The moment node-01
    has taken that pre-prepare (and sent its PREPARE), X is revoked from before the block's
    date (a CA list dated back, as after a key compromise): node-02 and node-03 judge the
    same pre-prepare after it and refuse it. Whether the block then commits or not, every
    honest node must end with the same chain and state, holding X's request at all of
    them or at none, and the chain must commit the workload. (Here the block lacks a
    quorum, a view change follows, and the new primary leaves the request out:
    `request-certificate-lapsed`.)"""
    from citychain.summary import audit_run, summarize
    from consensus.messages import PrePrepare

    box = {}

    def inject(run):
        victim = _spare_client(run)
        env = Signer(victim.id, run.genesis.identities[victim.id].key, run.genesis.chain_id).sign(
            Request(1, "records", "put", {"key": "landing", "value": "between"}, 1000 * MS))
        box["digest"] = env.digest
        node = run.nodes["node-01"]
        original = node.on_message

        def on_message(m, now, link=None):
            original(m, now, link)
            if (type(m.message) is PrePrepare and "revoked" not in box
                    and any(r.digest == env.digest for r in m.message.block.requests)):
                box["revoked"] = now
                run.membership.set_revoked({victim.id: run.membership.epoch_ns})  # revoked from time 0
        run.network.handlers["node-01"] = on_message  # what the network delivers to node-01
        run.engine.at(1000 * MS, lambda _a, now: run.nodes["node-00"].on_message(env, now), None)

    run = simulate(small(transactions=300, rate_tps=150), monkeypatch, inject=inject)
    assert "revoked" in box, "the primary never proposed the request"
    s = summarize(run, "landing")
    assert s["safety_violations"] == 0 and s["agreement"] is True
    assert audit_run(run).safety_violations == []
    chains = {n: tuple(e.block.hash for e in run.nodes[n].ledger.entries) for n in run.genesis.replicas}
    assert len(set(chains.values())) == 1, {n: len(c) for n, c in chains.items()}
    held = {n: any(r.digest == box["digest"] for e in run.nodes[n].ledger.entries for r in e.block.requests)
            for n in run.genesis.replicas}
    assert len(set(held.values())) == 1, held
    refused = sum(run.metrics.drops[n].get("bad-request-in-block: certificate-revoked", 0)
                  for n in ("node-02", "node-03"))
    assert refused >= 1, {n: dict(run.metrics.drops[n]) for n in run.genesis.replicas}
    assert s["committed_tx"] == s["submitted_tx"], s["dropped"]
