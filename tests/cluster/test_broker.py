"""The broker side against a real Mosquitto on free loopback ports: accounts, ACL, TLS,
bridges, restarts. A forbidden publish is acknowledged and silently dropped by Mosquitto,
so each ACL test sends a legitimate marker last on the same connection: once the marker
has arrived, anything sent before it would have too."""

import asyncio
import os
import pwd
import socket
import ssl
import stat
import subprocess
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import psutil
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from citychain.cluster import topics as T
from citychain.cluster.broker import (MESSAGE_SIZE_LIMIT, Broker, BrokerError, acl_text,
                                      client_ssl_context, load_or_create_credentials, member_roles, site_brokers,
                                      start_sites)
from node.codec import MAX_MESSAGE_BYTES
from node.identity import CertificateAuthority, derive_key

from .conftest import CHAIN

WAIT = 5.0  # the most any expected message may take
QUIET = 0.3  # how long we listen for what must not come, after the marker arrived


def run(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@asynccontextmanager
async def connected(broker: Broker, user: str, **options):
    async with aiomqtt.Client(**{**broker.client_options(user), "timeout": WAIT, **options}) as client:
        yield client


@asynccontextmanager
async def listening(broker: Broker, user: str, filters=None):
    """A subscriber as ``user`` to ``filters`` (its role's own by default); yields the list it fills."""
    got: list[tuple[str, bytes]] = []
    filters = filters or T.subscriptions(CHAIN, broker.credentials.role(user), user)
    async with connected(broker, user) as client:
        for f in filters:
            await client.subscribe(f, qos=1)

        async def pump():
            async for m in client.messages:
                got.append((m.topic.value, bytes(m.payload)))

        task = asyncio.create_task(pump())
        try:
            yield got
        finally:
            task.cancel()


async def until(got, item, timeout: float = WAIT):
    async with asyncio.timeout(timeout):
        while item not in got:
            await asyncio.sleep(0.01)
    await asyncio.sleep(QUIET)


def delivered(broker: Broker, sender: str, topic: str, payload: bytes, receiver: str) -> list:
    """What ``receiver`` (subscribed to its role's topics) got when ``sender`` published one message."""
    async def go():
        async with listening(broker, receiver) as got:
            async with connected(broker, sender) as client:
                await client.publish(topic, payload, qos=1)
            await until(got, (topic, payload))
        return got

    return run(go())


@pytest.fixture
def broker(mosquitto, credentials, tmp_path):
    b = Broker(tmp_path / "broker", credentials).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority(CHAIN, "Test Chain", derive_key(7, CHAIN, "ca"))


# --- topics and files -----------------------------------------------------------------


def test_topics_round_trip():
    assert T.bcast("c", "node-01") == "citychain/c/bcast/node-01"
    assert T.parse(T.bcast("c", "node-01"), "c") == ("bcast", None, "node-01")
    assert T.parse(T.direct("c", "node-02", "client-07")) == ("to", "node-02", "client-07")
    assert T.parse(T.request("c", "client-07")) == ("req", None, "client-07")
    assert T.parse(T.status("c", "node-03")) == ("status", None, "node-03")
    assert T.node_filters("c", "node-01") == ("citychain/c/bcast/+", "citychain/c/to/node-01/+",
                                              "citychain/c/req/+")
    assert T.client_filters("c", "client-00") == ("citychain/c/status/+", "citychain/c/to/client-00/+")
    for bad in ("citychain/other/bcast/n", "citychain/c/bcast", "citychain/c/to/n", "citychain/c/x/n", "x/c/req/n"):
        with pytest.raises(ValueError):
            T.parse(bad, "c")
    for name in ("a/b", "+", "#", "", "$SYS"):
        with pytest.raises(ValueError):
            T.bcast("c", name)


def test_acl_grants_each_account_its_own_topics_only(credentials):
    blocks = {b.split("\n")[1]: b for b in acl_text(credentials).split("\n\n") if b.startswith("# ") and "\nuser " in b}
    assert blocks["user node-01"].splitlines()[2:] == [
        "topic write citychain/testchain/bcast/node-01", "topic write citychain/testchain/to/+/node-01",
        "topic write citychain/testchain/status/node-01", "topic read citychain/testchain/bcast/+",
        "topic read citychain/testchain/to/node-01/+", "topic read citychain/testchain/req/+"]
    assert blocks["user client-00"].splitlines()[2:] == [
        "topic write citychain/testchain/req/client-00", "topic write citychain/testchain/to/+/client-00",
        "topic read citychain/testchain/status/+", "topic read citychain/testchain/to/client-00/+"]
    assert blocks["user operator"].splitlines()[2:] == ["topic read citychain/testchain/status/#"]
    assert "pattern" not in acl_text(credentials)


def test_credentials_are_private_and_kept_across_runs(tmp_path, taihu_path):
    from citychain.genesis import build_genesis
    from citychain.scenario import load_scenario

    doc = build_genesis(load_scenario(taihu_path).with_overrides(nodes=4)).doc
    path = tmp_path / "credentials.json"
    first = load_or_create_credentials(doc, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first.users("consensus")) == {m["id"] for m in doc["members"] if m["role"] == "consensus"}
    assert first.users("operator") == ["operator"] and first.users("client")
    again = load_or_create_credentials(doc, path)
    assert again.accounts == first.accounts  # passwords kept, not rotated by a second `cluster up`
    assert set(member_roles(doc)) == set(first.accounts)


def test_password_file_holds_hashes_only(broker, credentials):
    text = broker.password_path.read_text()
    for user, account in credentials.accounts.items():
        assert f"{user}:$7$" in text
        assert account.password not in text
    assert stat.S_IMODE(broker.password_path.stat().st_mode) == 0o600


# --- authentication -------------------------------------------------------------------


def test_wrong_password_is_refused(broker):
    async def attempt(user, password):
        async with aiomqtt.Client(broker.host, broker.port, username=user, password=password, timeout=WAIT):
            pass

    with pytest.raises(aiomqtt.MqttCodeError):
        run(attempt("node-00", "not-the-password"))
    with pytest.raises(aiomqtt.MqttCodeError):
        run(attempt("node-00", broker.credentials.password("node-01")))  # another member's password
    with pytest.raises(aiomqtt.MqttCodeError):
        run(attempt("stranger", "whatever"))
    run(attempt("node-00", broker.credentials.password("node-00")))  # and the right one works


def test_anonymous_is_refused(broker):
    async def anonymous():
        async with aiomqtt.Client(broker.host, broker.port, timeout=WAIT):
            pass

    with pytest.raises(aiomqtt.MqttCodeError):
        run(anonymous())
    assert "allow_anonymous false" in broker.conf_path.read_text()


# --- the ACL --------------------------------------------------------------------------


def test_a_node_cannot_publish_as_another(broker):
    async def scenario():
        async with listening(broker, "bridge-test", [T.chain_filter(CHAIN)]) as everything, \
                listening(broker, "node-02") as node2:
            async with connected(broker, "node-00") as node0:
                forged = [T.bcast(CHAIN, "node-01"), T.direct(CHAIN, "node-02", "node-01"),
                          T.status(CHAIN, "node-01"), T.request(CHAIN, "client-00")]
                for topic in forged:
                    await node0.publish(topic, b"forged", qos=1)  # acknowledged, then dropped
                await node0.publish(T.direct(CHAIN, "node-02", "node-00"), b"direct", qos=1)
                await node0.publish(T.bcast(CHAIN, "node-00"), b"marker", qos=1)
            await until(everything, (T.bcast(CHAIN, "node-00"), b"marker"))
            await until(node2, (T.bcast(CHAIN, "node-00"), b"marker"))
        return everything, node2

    everything, node2 = run(scenario())
    assert everything == [(T.direct(CHAIN, "node-02", "node-00"), b"direct"), (T.bcast(CHAIN, "node-00"), b"marker")]
    assert node2 == everything


def test_a_client_may_only_request_as_itself(broker):
    async def scenario():
        async with listening(broker, "node-01") as node1:
            async with connected(broker, "client-00") as client:
                for topic in (T.request(CHAIN, "client-01"), T.bcast(CHAIN, "client-00"),
                              T.direct(CHAIN, "node-01", "client-01")):
                    await client.publish(topic, b"forged", qos=1)
                await client.publish(T.direct(CHAIN, "node-01", "client-00"), b"direct", qos=1)
                await client.publish(T.request(CHAIN, "client-00"), b"marker", qos=1)
            await until(node1, (T.request(CHAIN, "client-00"), b"marker"))
        return node1

    assert run(scenario()) == [(T.direct(CHAIN, "node-01", "client-00"), b"direct"),
                               (T.request(CHAIN, "client-00"), b"marker")]


def test_reading_is_limited_to_what_the_role_needs(broker):
    """A node subscribing to the whole chain still gets only its own point-to-point messages;
    the operator and clients see status notices, and the operator can publish nothing."""
    async def scenario():
        async with listening(broker, "node-01", [T.chain_filter(CHAIN)]) as greedy, \
                listening(broker, "operator", [T.chain_filter(CHAIN)]) as operator, \
                listening(broker, "client-00") as client:
            async with connected(broker, "operator") as op:
                await op.publish(T.status(CHAIN, "operator"), b"operator-speaks", qos=1)
            async with connected(broker, "node-00") as node0:
                await node0.publish(T.direct(CHAIN, "node-02", "node-00"), b"for-node-02", qos=1)
                await node0.publish(T.direct(CHAIN, "node-01", "node-00"), b"for-node-01", qos=1)
                await node0.publish(T.status(CHAIN, "node-00"), b"marker", qos=1)
            marker = (T.status(CHAIN, "node-00"), b"marker")
            await until(operator, marker)
            await until(client, marker)
        return greedy, operator, client

    greedy, operator, client = run(scenario())
    assert greedy == [(T.direct(CHAIN, "node-01", "node-00"), b"for-node-01")]
    assert operator == client == [(T.status(CHAIN, "node-00"), b"marker")]


# --- TLS ------------------------------------------------------------------------------


def test_tls_server_certificate_is_issued_by_the_chain_ca(ca, tmp_path):
    from citychain.cluster.broker import write_tls_files

    ca_path, cert_path, _ = write_tls_files(tmp_path, ca, "broker")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    result = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", str(ca_path),
                             str(cert_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout


def test_tls_listener(mosquitto, credentials, ca, tmp_path):
    with Broker(tmp_path / "tls", credentials, tls=True, ca=ca) as broker:
        topic = T.status(CHAIN, "node-00")
        assert delivered(broker, "node-00", topic, b"over-tls", "client-00") == [(topic, b"over-tls")]

        with pytest.raises(aiomqtt.MqttError):  # plain MQTT to the TLS port
            run(pub_sub_plain(broker))
        with pytest.raises(aiomqtt.MqttError):  # TLS that trusts the system's CAs, not the chain's
            run(connect_once(broker, tls_context=ssl.create_default_context()))
        for version in ("TLSv1_2", "TLSv1_3"):  # both versions, with the broker's Ed25519 key
            context = client_ssl_context(broker.ca_path)
            context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
            with socket.create_connection((broker.host, broker.port)) as raw, \
                    context.wrap_socket(raw, server_hostname=broker.host) as tls:
                assert tls.version() == version.replace("_", ".")


async def pub_sub_plain(broker):
    async with aiomqtt.Client(broker.host, broker.port, username="node-00",
                              password=broker.credentials.password("node-00"), timeout=1):
        pass


async def connect_once(broker, **options):
    async with connected(broker, "node-00", **options):
        pass


# --- bridges --------------------------------------------------------------------------


@pytest.mark.parametrize("sites, tls", [(2, False), (3, False), (2, True)], ids=["two", "three", "two-tls"])
def test_bridged_brokers_deliver_every_message_once_to_every_site(mosquitto, credentials, ca, tmp_path, sites, tls):
    names = ["east", "west", "north"][:sites]
    brokers, creds = site_brokers(tmp_path, credentials, names, tls=tls, ca=ca)
    assert creds.role("bridge-west") == "bridge" and "bridge-east" not in creds.accounts  # the hub bridges to nobody
    try:
        ports = start_sites(brokers)
        assert len(set(ports.values())) == sites
        assert f"address 127.0.0.1:{ports['east']}" in brokers["west"].conf_path.read_text()

        async def scenario():
            async with listening(brokers[names[0]], "node-01") as a, listening(brokers[names[1]], "node-02") as b, \
                    listening(brokers[names[-1]], "node-00") as c:
                listeners = {names[0]: a, names[1]: b, names[-1]: c}
                # The bridges subscribe just after they connect: probe until each site hears each other site.
                for site in names:
                    async with connected(brokers[site], "client-00") as client:
                        for attempt in range(100):
                            probe = (T.request(CHAIN, "client-00"), f"probe-{site}-{attempt}".encode())
                            await client.publish(*probe, qos=1)
                            await asyncio.sleep(0.05)
                            if all(probe in got for got in listeners.values()):
                                break
                        else:
                            raise AssertionError(f"what is published at {site} never reached every site")
                for got in listeners.values():
                    got.clear()
                for site in names:  # now every publish at any site must reach every site exactly once
                    async with connected(brokers[site], "client-00") as client:
                        await client.publish(T.request(CHAIN, "client-00"), f"from-{site}".encode(), qos=1)
                    async with connected(brokers[site], "node-01") as node1:
                        await node1.publish(T.bcast(CHAIN, "node-01"), f"bcast-{site}".encode(), qos=1)
                for got in listeners.values():
                    await until(got, (T.bcast(CHAIN, "node-01"), f"bcast-{names[-1]}".encode()))
                await asyncio.sleep(QUIET)
            return listeners

        listeners = run(scenario())
        expected = sorted([(T.request(CHAIN, "client-00"), f"from-{s}".encode()) for s in names]
                          + [(T.bcast(CHAIN, "node-01"), f"bcast-{s}".encode()) for s in names])
        for site, got in listeners.items():
            assert sorted(got) == expected, f"at {site}: {got}"
    finally:
        for broker in brokers.values():
            broker.stop()


# --- the process ----------------------------------------------------------------------


def test_restart_on_the_same_port_and_stop_from_another_process(mosquitto, credentials, tmp_path):
    broker = Broker(tmp_path / "b", credentials).start()
    try:
        first = broker.pid
        assert int(broker.pid_path.read_text()) == first
        broker.restart()
        assert broker.pid != first and not psutil.pid_exists(first)
        topic = T.bcast(CHAIN, "node-00")
        assert delivered(broker, "node-00", topic, b"after-restart", "node-01") == [(topic, b"after-restart")]
        # `cluster down` runs in another process: it knows the directory and port, not our child.
        other = Broker(tmp_path / "b", credentials, port=broker.port)
        pid = broker.pid
        assert other.running() and other.pid == pid
        other.stop()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert not other.running()
        with pytest.raises(OSError):
            socket.create_connection((broker.host, broker.port), timeout=1).close()
    finally:
        broker.stop()


def test_a_broker_that_cannot_start_says_why(mosquitto, credentials, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match="Address already in use"):
            Broker(tmp_path / "b", credentials, port=port).start()


def test_a_picked_port_taken_meanwhile_is_picked_again(mosquitto, credentials, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = Broker(tmp_path / "b", credentials)
        broker.port = taken.getsockname()[1]  # as if another program took it between pick and start
        with broker:
            assert broker.port != taken.getsockname()[1]


def test_privileges_are_dropped_when_the_folder_allows(mosquitto, credentials, tmp_path):
    """As root, mosquitto drops to its own account, which must read its files; below a
    root-only folder (like pytest's temp dir) it is told to stay root instead."""
    reachable = Path(tempfile.mkdtemp(prefix="citychain-broker-"))
    try:
        reachable.chmod(0o711)
        with Broker(reachable / "b", credentials) as open_broker, Broker(tmp_path / "b", credentials) as closed_broker:
            runs_as = {b: psutil.Process(b.pid).username() for b in (open_broker, closed_broker)}
            me = pwd.getpwuid(os.geteuid()).pw_name
            if os.geteuid() != 0:
                assert runs_as == {open_broker: me, closed_broker: me}
            else:
                has_account = any(p.pw_name == "mosquitto" for p in pwd.getpwall())
                assert runs_as[open_broker] == ("mosquitto" if has_account else "root")
                assert runs_as[closed_broker] == "root"
                assert open_broker.run_as == runs_as[open_broker]
    finally:
        subprocess.run(["rm", "-rf", str(reachable)], check=True)


def test_the_broker_passes_every_message_a_node_accepts_and_nothing_larger(broker):
    """A PRE-PREPARE or BLOCK-REPLY of a full block is up to about 32 MiB once escaped:
    the broker's limit is the decoder's (MAX_MESSAGE_BYTES), not less."""
    big = b"x" * (40 * 1024 * 1024)
    over = b"y" * (MESSAGE_SIZE_LIMIT + 1)

    async def scenario():
        async with listening(broker, "node-02") as got:
            async with connected(broker, "node-00") as node0:
                await node0.publish(T.bcast(CHAIN, "node-00"), big, qos=1)
                await node0.publish(T.bcast(CHAIN, "node-00"), over, qos=1)
                await node0.publish(T.bcast(CHAIN, "node-00"), b"marker", qos=1)
            await until(got, (T.bcast(CHAIN, "node-00"), b"marker"), timeout=60)
        return [len(payload) for _topic, payload in got]

    assert MESSAGE_SIZE_LIMIT == MAX_MESSAGE_BYTES
    assert run(scenario(), timeout=90) == [len(big), len(b"marker")]
