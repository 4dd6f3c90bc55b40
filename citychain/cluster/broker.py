"""A Mosquitto broker for a chain: accounts, ACL, TLS, site bridges, and the process.

Mosquitto is trusted with delivery only, never with integrity (every payload is signed
end to end), but it is the first gate: no anonymous clients, one account per member with
a generated password, and an ACL written from ``topics.grants`` so that a member may
publish only under its own name and read only what its role needs.

Facts about Mosquitto 2.0 this module relies on (docs/deployment.md says more):

- Started as root, it drops privileges to the ``mosquitto`` account *before* it reads the
  password and ACL files and writes its pid file, so those must be reachable by that
  account or it exits. We chown the broker's directory to it when every folder above is
  traversable by it, and otherwise (a root-only folder such as pytest's temp dir or
  /root) tell it ``user root`` rather than fail (``Broker.run_as`` says which).
- A publish the ACL forbids is acknowledged and silently dropped.
- Ed25519 TLS server certificates work with its OpenSSL 3 (TLS 1.2 and 1.3), so the
  broker's certificate is issued by the chain's own Ed25519 CA.
- Bridges: ``try_private`` (the default) makes a bridge known as one to the remote
  broker, which then never sends a message back over the bridge it came in on. A tree of
  bridges therefore delivers each message once; a cycle would not, so sites form a star
  around the first site's broker.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.codec import MAX_MESSAGE_BYTES
from node.identity import CertificateAuthority, cert_pem

from . import topics
from .topics import BRIDGE, CLIENT, OPERATOR, OPERATOR_USER, check_name, grants

LOOPBACK = "127.0.0.1"
SERVICE_ACCOUNT = "mosquitto"


MAX_INFLIGHT = 100  # unacknowledged QoS 1 messages per client
# bytes: the decoder's own limit (node/codec.py), so every message a node may accept can pass
# the broker: a PRE-PREPARE or BLOCK-REPLY of a full block (16 MiB of requests, up to twice
# that once escaped) and a state-transfer answer (MAX_MESSAGE_BYTES less 1 MiB).
MESSAGE_SIZE_LIMIT = MAX_MESSAGE_BYTES
# bytes queued per client beyond those in flight: the memory bound on a flood of large
# messages (max_queued_messages alone would allow 10,000 x 64 MiB). Two full messages fit.
MAX_QUEUED_BYTES = 2 * MAX_MESSAGE_BYTES


class BrokerError(RuntimeError):
    """The broker could not be configured, started or stopped; the message says why."""


def find_binary(name: str = "mosquitto") -> str:
    """The path of a Mosquitto program (mosquitto, mosquitto_passwd); BrokerError if absent."""
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)),
                                       None)
    if not found:
        raise BrokerError(f"{name} not found: install it (apt-get install mosquitto mosquitto-clients)")
    return found


# --- accounts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    role: str  # one of topics.ROLES
    password: str


class Credentials:
    """Every broker account of one chain with its plaintext password.

    Saved as credentials.json, mode 0600: the cluster tool hands each process its own
    password; the brokers only ever see the hashes (``write_password_file``).
    """

    def __init__(self, chain_id: str, accounts: Mapping[str, Account]):
        self.chain_id = check_name(chain_id)
        for user, account in accounts.items():
            check_name(user)
            if account.role not in topics.ROLES:
                raise ValueError(f"{user}: unknown broker role {account.role!r}")
        self.accounts = dict(accounts)

    @classmethod
    def generate(cls, chain_id: str, roles: Mapping[str, str], previous: Credentials | None = None) -> Credentials:
        """A fresh random password for every user in ``roles`` that ``previous`` lacks."""
        kept = previous.accounts if previous is not None and previous.chain_id == chain_id else {}
        return cls(chain_id, {user: kept[user] if user in kept and kept[user].role == role
                              else Account(role, secrets.token_urlsafe(24)) for user, role in roles.items()})

    def with_accounts(self, roles: Mapping[str, str]) -> Credentials:
        """These credentials plus any of ``roles`` they lack (existing passwords kept)."""
        return Credentials.generate(self.chain_id, {**{u: a.role for u, a in self.accounts.items()}, **roles}, self)

    def password(self, user: str) -> str:
        return self.accounts[user].password

    def role(self, user: str) -> str:
        return self.accounts[user].role

    def users(self, role: str | None = None) -> list[str]:
        return [u for u, a in self.accounts.items() if role is None or a.role == role]

    def save(self, path: Path) -> None:
        """Write atomically, readable by the owner only (0600) from the first byte."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"chain_id": self.chain_id,
               "users": {u: {"role": a.role, "password": a.password} for u, a in sorted(self.accounts.items())}}
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)  # in case the file existed with a wider mode
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        doc = json.loads(Path(path).read_text())
        return cls(doc["chain_id"], {u: Account(a["role"], a["password"]) for u, a in doc["users"].items()})


def member_roles(genesis_doc: dict) -> dict[str, str]:
    """A broker account per genesis member and client (its role), and the operator's."""
    roles = {m["id"]: m["role"] for m in genesis_doc["members"]}
    roles.update({c["id"]: CLIENT for c in genesis_doc.get("clients", ())})
    roles[OPERATOR_USER] = OPERATOR
    return roles


def load_or_create_credentials(genesis_doc: dict, path: Path) -> Credentials:
    """The chain's credentials.json: read if there, completed for any new member, saved 0600."""
    path = Path(path)
    previous = Credentials.load(path) if path.exists() else None
    credentials = Credentials.generate(genesis_doc["chain_id"], member_roles(genesis_doc), previous)
    credentials.save(path)
    return credentials


def acl_text(credentials: Credentials) -> str:
    """The Mosquitto ACL: one ``user`` block per account, listing exactly its grants.

    Not ``pattern`` lines: a pattern applies to every account whatever its role, and roles
    differ in what they may publish (a client must not broadcast as a node would).
    Whatever no line grants is denied.
    """
    chain = credentials.chain_id
    lines = [f"# Mosquitto ACL of chain {chain}, written by citychain from citychain/cluster/topics.py.",
             "# Anything not granted here is denied; a denied publish is acknowledged and dropped.", ""]
    for user in sorted(credentials.accounts, key=lambda u: (topics.ROLES.index(credentials.role(u)), u)):
        g = grants(chain, credentials.role(user), user)
        lines.append(f"# {credentials.role(user)}")
        lines.append(f"user {user}")
        lines += [f"topic write {t}" for t in g.write] + [f"topic read {t}" for t in g.read]
        lines.append("")
    return "\n".join(lines)


def write_password_file(path: Path, credentials: Credentials) -> None:
    """Hashed with ``mosquitto_passwd -U`` (PBKDF2-SHA512); the plaintext exists only in a 0600 file meanwhile."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{u}:{a.password}\n" for u, a in sorted(credentials.accounts.items()))
    result = subprocess.run([find_binary("mosquitto_passwd"), "-U", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        raise BrokerError(f"mosquitto_passwd -U failed: {result.stderr.strip() or result.stdout.strip()}")


# --- TLS ------------------------------------------------------------------------------


def client_ssl_context(ca_file: Path | str) -> ssl.SSLContext:
    """What a node, client or the operator connects with: trusts the chain's CA only,
    checks the broker's name (its certificate names localhost and 127.0.0.1), TLS 1.2+."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def write_tls_files(folder: Path, ca: CertificateAuthority, name: str, dns: tuple[str, ...] = ("localhost",),
                    ips: tuple[str, ...] = (LOOPBACK,)) -> tuple[Path, Path, Path]:
    """ca.pem, server.pem and server-key.pem (a fresh Ed25519 key) for a broker; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    ca_path.write_text(cert_pem(ca.cert))
    cert_path.write_text(cert_pem(ca.issue_tls_server(name, key.public_key(), dns=dns, ips=ips)))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return ca_path, cert_path, key_path


# --- bridges --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bridge:
    """A connection from this broker to ``remote`` carrying the whole chain both ways."""

    remote: Broker
    user: str  # this broker's bridge account at the remote

    def config(self, credentials: Credentials, ca_file: Path | None) -> str:
        chain = credentials.chain_id
        lines = [
            f"connection {self.user}",
            f"address {self.remote.host}:{self.remote.port}",
            f"remote_clientid {self.user}",
            f"local_clientid {self.user}-local",
            f"remote_username {self.user}",
            f"remote_password {credentials.password(self.user)}",
            # Both ways, QoS 1: at least once between sites; receivers drop duplicates of signed messages.
            f"topic {topics.chain_filter(chain)} both 1",
            "bridge_protocol_version mqttv311",
            "try_private true",  # the remote knows us as a bridge and sends nothing back the way it came
            "cleansession true",  # nothing is persisted anyway: persistence is off
            "notifications false",  # no $SYS/broker/connection/... state messages (no ACL for them)
            "start_type automatic",
            "restart_timeout 1 5",  # reconnect within seconds after the remote restarts
            "keepalive_interval 10",
        ]
        if self.remote.tls:
            if ca_file is None:
                raise BrokerError(f"bridge to TLS broker {self.remote.name} needs the chain's CA file")
            lines += [f"bridge_cafile {ca_file}", "bridge_insecure false", "bridge_tls_version tlsv1.2"]
        return "\n".join(lines) + "\n"


def bridge_user(site: str) -> str:
    return f"bridge-{check_name(site)}"


# --- the broker -----------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Can ``user`` reach entries inside every folder from / down to ``path``?"""
    groups = {user.pw_gid} | {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    for folder in [path, *path.parents]:
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def _tail(path: Path, offset: int = 0, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


class Broker:
    """One Mosquitto broker for one chain, in its own directory, on a loopback port.

    The directory holds mosquitto.conf, the hashed password file, the ACL, the log
    (mosquitto.log, everything the broker prints), the pid file and, with TLS, tls/.
    ``start`` writes them all from the arguments; ``stop`` works from another process
    too (through the pid file), so ``cluster down`` can stop what ``cluster up`` started.
    """

    def __init__(self, directory: Path, credentials: Credentials, *, port: int | None = None,
                 host: str = LOOPBACK, tls: bool = False, ca: CertificateAuthority | None = None,
                 name: str = "broker", bridges: Iterable[Bridge] = (), run_as: str | None = None,
                 max_queued_messages: int = 10_000):
        if tls and ca is None:
            raise ValueError("tls=True needs the chain's CertificateAuthority (ca=) to issue the broker's certificate")
        self.directory = Path(directory).resolve()
        self.credentials = credentials
        self.host = host
        self._port_given = port is not None
        self.port = port if port is not None else free_port(host)
        self.tls = tls
        self.ca = ca
        self.name = check_name(name)
        self.bridges = list(bridges)
        self.run_as_requested = run_as
        self.run_as: str | None = None  # the account mosquitto runs as, once started
        self.max_queued_messages = max_queued_messages
        self._proc: subprocess.Popen | None = None
        self._log_offset = 0  # where the log of the current run starts

    # paths
    @property
    def conf_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def pid_path(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def password_path(self) -> Path:
        return self.directory / "passwords"

    @property
    def acl_path(self) -> Path:
        return self.directory / "acl"

    @property
    def ca_path(self) -> Path:
        """The chain's CA certificate that clients trust (with TLS)."""
        return self.directory / "tls" / "ca.pem"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return client_ssl_context(self.ca_path) if self.tls else None

    def client_options(self, user: str) -> dict:
        """Keyword arguments for ``aiomqtt.Client`` to connect as ``user``."""
        return {"hostname": self.host, "port": self.port, "username": user,
                "password": self.credentials.password(user), "tls_context": self.ssl_context()}

    # configuration
    def _decide_account(self) -> str | None:
        """Which account mosquitto should run as (None: not root, it stays who we are)."""
        if os.geteuid() != 0:
            return None
        if self.run_as_requested is not None:
            return self.run_as_requested
        try:
            service = pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            return "root"
        return SERVICE_ACCOUNT if _traversable_by(self.directory.parent, service) else "root"

    def config_text(self) -> str:
        d = self.directory
        lines = [
            f"# Mosquitto broker {self.name} of chain {self.credentials.chain_id}, written by citychain.",
            "per_listener_settings false",  # one listener; the settings below are global
            "allow_anonymous false",
            f"password_file {self.password_path}",
            f"acl_file {self.acl_path}",
            "persistence false",  # consensus messages are worthless after a restart; nodes keep their own state
            "log_dest stderr",  # start() sends stderr to mosquitto.log, so start-up errors land there too
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            f"pid_file {self.pid_path}",
            "set_tcp_nodelay true",  # PBFT messages are small and latency-bound
            # Bounded per client: at most MAX_INFLIGHT unacknowledged and max_queued_messages
            # waiting behind them (then new ones are dropped), so a flooding member cannot
            # exhaust the broker's memory; and no message larger than any legitimate one.
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            f"max_inflight_messages {MAX_INFLIGHT}",
            f"message_size_limit {MESSAGE_SIZE_LIMIT}",
            "retain_available false",  # a retained message would be replayed to every node that subscribes
        ]
        if self.run_as:
            lines.append(f"user {self.run_as}")
        lines += ["", f"listener {self.port} {self.host}"]
        if self.tls:
            tls = d / "tls"
            lines += [f"cafile {tls / 'ca.pem'}", f"certfile {tls / 'server.pem'}", f"keyfile {tls / 'server-key.pem'}",
                      "tls_version tlsv1.2"]  # the minimum: TLS 1.2 and 1.3
        for bridge in self.bridges:
            lines += ["", bridge.config(self.credentials, self.ca_path if self.tls or bridge.remote.tls else None)]
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        """Lay out the directory: password file, ACL, TLS files, mosquitto.conf; owned so the broker can read them."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self.run_as = self._decide_account()
        write_password_file(self.password_path, self.credentials)
        self._write_private(self.acl_path, acl_text(self.credentials))
        needs_ca = self.tls or any(b.remote.tls for b in self.bridges)
        if self.tls and not (self.directory / "tls" / "server.pem").exists():
            write_tls_files(self.directory / "tls", self.ca, self.name)
        elif needs_ca:
            if self.ca is None:
                raise BrokerError(f"{self.name} bridges to a TLS broker: give it the chain's CA (ca=)")
            (self.directory / "tls").mkdir(exist_ok=True)
            self.ca_path.write_text(cert_pem(self.ca.cert))
        self._write_private(self.conf_path, self.config_text())  # may hold bridge passwords
        if self.run_as and self.run_as != "root":
            service = pwd.getpwnam(self.run_as)
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, service.pw_uid, service.pw_gid)
        return self.conf_path

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    # the process
    @property
    def pid(self) -> int | None:
        """The running broker's PID: ours if we started it, else from a live pid file."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return self._pid_from_file()

    def _pid_from_file(self) -> int | None:
        """The pid file's PID, only if that process is a mosquitto running our config."""
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = psutil.Process(pid).cmdline()
        except (OSError, ValueError, psutil.Error):
            return None
        return pid if str(self.conf_path) in cmdline and "mosquitto" in Path(cmdline[0]).name else None

    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 10.0) -> Broker:
        """Write the configuration and start mosquitto; return once it accepts connections.

        A port we picked ourselves that someone else took meanwhile is picked again (on
        the first start only: a restart keeps its port, which clients reconnect to).
        """
        if self.running():
            raise BrokerError(f"broker {self.name} is already running (pid {self.pid})")
        for attempt in range(3):
            self.write_config()
            offset = self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = open(self.log_path, "ab")
            try:
                self._proc = subprocess.Popen([find_binary(), "-c", str(self.conf_path)], stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                log.close()
            try:
                self._wait_ready(offset, timeout)
                return self
            except BrokerError:
                in_use = "Address already in use" in _tail(self.log_path, offset)
                if not in_use or self._port_given or attempt == 2:
                    raise
                self.port = free_port(self.host)
        raise AssertionError("unreachable")

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BrokerError(f"mosquitto ({self.conf_path}) exited with code {code}; its log ends:\n"
                                  f"{_tail(self.log_path, offset)}")
            # "running" is logged after the listener is open; a connection proves it is ours and accepting.
            if " running" in _tail(self.log_path, offset, lines=50):
                try:
                    socket.create_connection((self.host, self.port), timeout=0.5).close()
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self._terminate(self._proc.pid, 1.0)
                raise BrokerError(f"mosquitto on {self.address} did not accept connections within {timeout:.0f} s; "
                                  f"its log ends:\n{_tail(self.log_path, offset)}")
            time.sleep(0.02)

    def log(self) -> str:
        """What the broker logged since it was last started (by this object)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, *parts: str, timeout: float = 10.0) -> str:
        """Until the current run has logged a line holding every one of ``parts``; that line.

        BrokerError after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if all(p in line for p in parts):
                    return line
            if time.monotonic() > deadline:
                raise BrokerError(f"broker {self.name} did not log {parts} within {timeout:.0f} s; its log ends:\n"
                                  f"{_tail(self.log_path, self._log_offset)}")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; a broker already gone is fine."""
        pid = self.pid
        if pid is not None:
            self._terminate(pid, timeout)
        self._proc = None

    def _terminate(self, pid: int, timeout: float) -> None:
        proc = self._proc if self._proc is not None and self._proc.pid == pid else None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if proc is not None:  # our child: wait() also reaps it
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return
        try:
            psutil.Process(pid).wait(timeout)
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass

    def restart(self, timeout: float = 10.0) -> Broker:
        """Stop and start again on the same port (clients must reconnect)."""
        self.stop()
        self._port_given = True
        return self.start(timeout)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- several sites --------------------------------------------------------------------


def site_brokers(root: Path, credentials: Credentials, sites: Iterable[str], *, tls: bool = False,
                 ca: CertificateAuthority | None = None, ports: Mapping[str, int] | None = None,
                 run_as: str | None = None) -> tuple[dict[str, Broker], Credentials]:
    """One broker per site under ``root/<site>``, bridged as a star around the first site.

    Every other site's broker holds one bridge connection to the hub, as account
    ``bridge-<site>`` (added to the credentials returned, which the caller saves). A star
    is a tree, so with ``try_private`` every message reaches every site once. All brokers
    share the accounts and the ACL, so a node may connect to any of them. Start the hub
    first (``start_sites`` does).
    """
    sites = [check_name(s) for s in sites]
    if len(set(sites)) != len(sites) or not sites:
        raise ValueError(f"sites must be distinct and at least one: {sites}")
    credentials = credentials.with_accounts({bridge_user(s): BRIDGE for s in sites[1:]})
    ports = dict(ports or {})
    hub = Broker(Path(root) / sites[0], credentials, port=ports.get(sites[0]), tls=tls, ca=ca, name=sites[0],
                 run_as=run_as)
    brokers = {sites[0]: hub}
    for site in sites[1:]:
        brokers[site] = Broker(Path(root) / site, credentials, port=ports.get(site), tls=tls, ca=ca, name=site,
                               bridges=[Bridge(hub, bridge_user(site))], run_as=run_as)
    return brokers, credentials


def start_sites(brokers: Mapping[str, Broker], timeout: float = 10.0) -> dict[str, int]:
    """Start the hub, then the others, and wait until the hub has accepted every bridge; each site's port.

    A bridge subscribes right after it is accepted, so a message published in the first
    milliseconds may still miss another site (nodes resend and fetch what they miss).
    """
    started = []
    try:
        for broker in brokers.values():  # the hub is first
            started.append(broker.start(timeout))
        hub = started[0]
        for broker in started[1:]:
            for bridge in broker.bridges:
                if bridge.remote is hub:
                    hub.wait_for_log("New bridge connected from", f" as {bridge.user} (", timeout=timeout)
    except BaseException:
        for broker in started:
            broker.stop()
        raise
    return {site: broker.port for site, broker in brokers.items()}
