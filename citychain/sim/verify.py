"""Verify ahead: the simulator's Ed25519 verifications, started in a worker thread as
soon as an envelope is sent, so the main thread's Python work overlaps them (issue 13).

The simulator knows, when a node broadcasts or sends an envelope, that its receivers
will authenticate it. The network hands each newly sent envelope to ``VerifyAhead``,
which submits ``key.verify(signature, data)`` to a thread pool (cryptography's Ed25519
verify releases the GIL). When ``Membership`` later checks that envelope it calls the
member's key as before; the key is wrapped here, and its ``verify`` waits for the
answer already under way instead of verifying again.

A verdict is a pure function of (key, signature, bytes): the answer is the same
whichever thread computes it, and nothing else changes. Every role, body and
membership rule is still applied by ``Membership`` on the main thread, in the same
order, and the modelled CPU costs are charged exactly as before. So a run is
byte-identical with and without the pool (tests/citychain/test_verify_ahead.py).

``VerifyProcess`` does the same in one forked worker process, which needs no GIL of
ours: the thread pool's worker waits for the GIL after every check (docs/benchmarking.md).
"""

from __future__ import annotations

import os
import signal
import struct
import time


from node.membership import Membership

PENDING_LIMIT = 20_000  # envelopes sent but not yet checked; beyond this the oldest are forgotten


def default_threads() -> int:
    """Worker threads for verify-ahead: ``CITYCHAIN_VERIFY_THREADS``, else none.

    Off by default: a worker needs the GIL back after each verification, and the main
    thread lets go of it only every switch interval (5 ms), so the worker falls behind
    and the main thread waits for its answers. Measured on the shared two-core machine,
    it took main-thread CPU off but no wall time (docs/benchmarking.md)."""
    text = os.environ.get("CITYCHAIN_VERIFY_THREADS", "")
    try:
        return max(0, int(text)) if text else 0
    except ValueError:
        return 0


def default_process(auto: bool = False) -> bool:
    """Verify ahead in a worker process? ``CITYCHAIN_VERIFY_PROCESS=1`` says yes and ``=0``
    no. Otherwise no, unless ``auto`` (one run from the command line, ``citychain run``):
    then yes where this process may use two cores or more and can fork. A library caller
    (a test, a sweep that already runs one simulation per core) gets no worker unless it
    asks, so it never forks behind its caller's back."""
    said = os.environ.get("CITYCHAIN_VERIFY_PROCESS", "")
    if said in ("0", "1"):
        return said == "1"
    return auto and hasattr(os, "fork") and usable_cores() >= 2


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Key:
    """A member's public key whose ``verify`` first looks for an answer computed ahead."""

    __slots__ = ("key", "pending")

    def __init__(self, key, pending: dict):
        self.key = key
        self.pending = pending

    def verify(self, signature: bytes, data: bytes) -> None:
        item = self.pending.pop(signature, None)
        if item is not None and item[0] is self.key and item[1] == data:
            item[2].result()  # raises InvalidSignature exactly as key.verify would
            return
        self.key.verify(signature, data)

    def __getattr__(self, name):
        return getattr(self.key, name)


class _Ahead:
    """What both kinds of worker share: the members' keys wrapped for the run, and the
    envelopes sent whose answers are under way (``pending``, by signature)."""

    def __init__(self, membership: Membership):
        self.membership = membership
        self.pending: dict[bytes, tuple[object, bytes, object]] = {}  # signature -> (key, data, future)
        self.keys = {}
        for member, (key, org, role) in list(membership.members.items()):
            self.keys[member] = key
            membership.members[member] = (_Key(key, self.pending), org, role)
        self._verdicts = membership._verdicts

    def _key_to_ask(self, env):
        """The signer's key if ``env`` is worth checking ahead (not checked, not under way), else None."""
        if env.signature in self.pending or env in self._verdicts:
            return None
        key = self.keys.get(env.signer)
        if key is not None and len(self.pending) >= PENDING_LIMIT:
            pending = self.pending
            for old in list(pending)[:PENDING_LIMIT // 2]:
                del pending[old]
        return key

    def _give_keys_back(self) -> None:
        self.pending.clear()
        members = self.membership.members
        for member, (key, org, role) in list(members.items()):
            if isinstance(key, _Key):
                members[member] = (key.key, org, role)


class VerifyAhead(_Ahead):
    def __init__(self, membership: Membership, threads: int):
        super().__init__(membership)
        from concurrent.futures import ThreadPoolExecutor  # here: start-up counts (docs/benchmarking.md)

        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify-ahead")

    def sent(self, env) -> None:
        """An envelope leaves a node (or a client): start checking its signature."""
        key = self._key_to_ask(env)
        if key is not None:
            self.pending[env.signature] = (key, env.data, self.pool.submit(key.verify, env.signature, env.data))

    def close(self) -> None:
        """Stop the workers and give the membership its plain keys back."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._give_keys_back()


_HEAD = struct.Struct("<III")  # member index, signature length, data length
BATCH = 8  # envelopes per write to the worker (it is also handed what it has when an answer is missing)
GOOD = 1  # a verdict byte: the signature verified; anything else is checked again here
OUTBOX_LIMIT = 4 << 20  # bytes of requests waiting to be written beyond which the worker is watched
STALL_LIMIT = 5.0  # seconds over OUTBOX_LIMIT without a single answer after which it is given up


def _serve(requests: int, answers: int, keys: list) -> None:
    """The worker process: verify each (member, signature, data) as it comes and answer
    one byte per request, in order. Ends when the pipe closes."""
    inp = os.fdopen(requests, "rb", buffering=1 << 16)
    while True:
        head = inp.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        member, sig_len, size = _HEAD.unpack(head)
        signature = inp.read(sig_len)
        data = inp.read(size)
        try:
            keys[member].verify(signature, data)
            verdict = GOOD
        except Exception:  # InvalidSignature or anything else: the main process repeats it
            verdict = 0
        os.write(answers, bytes((verdict,)))


class _Ticket:
    """The answer to one request to the worker process, as a ``Future`` gives it."""

    __slots__ = ("worker", "index", "key", "signature", "data")

    def __init__(self, worker: "VerifyProcess", index: int, key, signature: bytes, data: bytes):
        self.worker = worker
        self.index = index
        self.key = key
        self.signature = signature
        self.data = data

    def result(self) -> None:
        if self.worker.verdict(self.index) != GOOD:
            # Refused (or the worker could not say): the main thread verifies it itself, so
            # the exception raised is exactly the one ``key.verify`` raises here.
            self.key.verify(self.signature, self.data)


class VerifyProcess(_Ahead):
    """Verify ahead in one forked worker process, which holds no GIL of ours.

    The thread pool above waits on the GIL after every check; a process does not. Each
    sent envelope is written to a pipe (member index, signature, bytes); the worker
    verifies in order and answers one byte each; ``verdict`` reads the answers as they
    come. A verdict is a pure function of (key, signature, bytes), so the run is the
    same: a signature the worker refuses is verified again on the main thread, which
    raises exactly what it would have raised without the worker."""

    def __init__(self, membership: Membership):
        super().__init__(membership)
        self.index = {member: i for i, member in enumerate(self.keys)}  # as the worker numbers them
        plain = list(self.keys.values())
        self.answers = bytearray()  # the worker's answers from request ``base`` on
        self.base = 0  # answers to older requests are forgotten (``_drain``): asked for, checked here
        self.outbox = bytearray()  # requests not yet written to the worker
        self.asked = 0  # requests made
        self.handed = 0  # requests made when the worker was last handed the outbox
        self.stalled: tuple[float, int] | None = None  # (since when, answers then) while the outbox is over its limit
        self.gone = False  # the worker died or stopped answering: everything is checked here
        # Not the parent's handlers in the worker: its SIGTERM handler removes the run's
        # scratch stores, which are the parent's to remove. Ctrl-C reaches the whole process
        # group; the worker leaves when the parent closes the pipe, not before. The signals
        # are blocked across the fork, so none reaches the worker before its handlers are
        # its own (one sent in that window waits, and then finds the default).
        fds: list[int] = []
        masked = None
        try:
            fds.extend(os.pipe())
            fds.extend(os.pipe())
            masked = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGINT))
            self.pid = os.fork()
        except OSError:  # no pipe or no process to be had: the caller runs without a worker
            if masked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, masked)
            for fd in fds:  # none left open (review revwk)
                os.close(fd)
            self._give_keys_back()
            raise
        requests_r, requests_w, answers_r, answers_w = fds
        if self.pid == 0:  # the worker: verify until the pipe closes, then leave at once
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, masked)
                os.close(requests_w)
                os.close(answers_r)
                _serve(requests_r, answers_w, plain)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)
        # The worker by a descriptor, not its number, where Linux has one: should another
        # part of the process reap it (a SIGCHLD handler, SIGCHLD ignored), its PID may name
        # another process by the time it is killed or waited for (review revwk).
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            pass
        os.close(requests_r)
        os.close(answers_w)
        self.out = requests_w
        self.answers_fd = answers_r
        # Neither pipe blocks: the main process never waits for the worker (``verdict``),
        # and with the worker stopped or stuck a full request pipe would otherwise hold
        # the run for ever (review revwk).
        os.set_blocking(answers_r, False)
        os.set_blocking(requests_w, False)
        try:  # a larger pipe: the main process rarely waits to hand work over (Linux)
            import fcntl
            fcntl.fcntl(requests_w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except (ImportError, OSError):
            pass

    def sent(self, env) -> None:
        """An envelope leaves a node (or a client): hand its signature to the worker."""
        if self.gone:
            return
        key = self._key_to_ask(env)
        if key is None:
            return
        signature = env.signature
        data = env.data
        self.outbox += _HEAD.pack(self.index[env.signer], len(signature), len(data))
        self.outbox += signature
        self.outbox += data
        self.pending[signature] = (key, data, _Ticket(self, self.asked, key, signature, data))
        self.asked += 1
        if self.asked - self.handed >= BATCH:
            self._flush()

    def _flush(self) -> None:
        """Hand the envelopes sent so far to the worker, in one write: each write wakes it,
        and on a busy machine a wake-up can cost the writer its core. What does not fit in
        the pipe waits in ``outbox`` for the next flush; a worker that stops reading
        altogether is given up (below)."""
        self._drain()
        if self.gone:
            return
        outbox = self.outbox
        try:
            written = os.write(self.out, outbox) if outbox else 0
        except BlockingIOError:  # the pipe is full: the worker is behind, or stuck
            written = 0
        except OSError:  # the worker is gone (EPIPE)
            self._abandon()
            return
        del outbox[:written]
        self.handed = self.asked
        if len(outbox) <= OUTBOX_LIMIT:
            self.stalled = None
            return
        # Much waits and the worker may have stopped reading. It is given up only if it
        # also answers nothing for STALL_LIMIT: envelopes of megabytes (a NEW-VIEW) pile up
        # for a while before a working worker has read them. Wall time decides only
        # whether the worker is used, never a verdict, so the run stays the same.
        answered = self.base + len(self.answers)
        now = time.monotonic()
        if self.stalled is None or self.stalled[1] != answered:
            self.stalled = (now, answered)
        elif now - self.stalled[0] > STALL_LIMIT:
            self._abandon()

    def _drain(self) -> None:
        try:
            while True:
                chunk = os.read(self.answers_fd, 1 << 16)
                if not chunk:  # end of file: the worker is gone
                    self._abandon()
                    break
                self.answers += chunk
        except BlockingIOError:
            pass
        # Bounded, as everything else a run keeps per envelope: only the latest answers can
        # still be asked for by a ticket in ``pending`` (review revwk).
        answers = self.answers
        if len(answers) > 2 * PENDING_LIMIT:
            drop = len(answers) - PENDING_LIMIT
            del answers[:drop]
            self.base += drop

    def verdict(self, index: int) -> int:
        """The worker's answer to request ``index`` if it has come, else 0: then the main
        process verifies the envelope itself. It never waits. At a few thousand envelopes
        a second the worker is ahead nearly always; where it is not (a small chain, whose
        messages are delivered moments after they are sent) a round trip to the worker
        cost more than the verification it saves, and a worker that has died or is stuck
        can hold nothing up."""
        if not self.gone and len(self.answers) + self.base <= index:
            self._flush()  # hands over what waits, so later answers come, and reads what came
        offset = index - self.base
        answers = self.answers
        return answers[offset] if 0 <= offset < len(answers) else 0

    def _abandon(self) -> None:
        self.gone = True
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def _reap(self) -> None:
        """Wait for the killed worker; it may have been reaped already: SIGCHLD ignored
        (inherited from a parent), or by another part of the process (review revwk)."""
        if self.pidfd is not None:
            try:
                os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
                return
            except ChildProcessError:
                return
            except (AttributeError, OSError):  # pidfd_open without waitid on it (Linux 5.3)
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def close(self) -> None:
        """Stop the worker and give the membership its plain keys back. The answers it
        still owes are not needed: it is killed rather than left to work through them
        (or, stuck, never to end)."""
        try:
            os.close(self.out)
            os.close(self.answers_fd)
            self._abandon()
            self._reap()
        finally:
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
            self._give_keys_back()
