"""Advisory locks through the Locks API: POSIX record-lock and flock semantics
between owners and sessions, and sessions that lose their locks when their
lease runs out."""

import errno
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from storage_server import sessions
from storage_server.client import connect
from storage_server.db import Database, make_engine
from storage_server.filesystem import inodes
from tests.harness.server import StorageServer, short_sessions
from tests.harness.volume import Volume, errno_of

RECORD = pb.LOCK_KIND_RECORD
FLOCK = pb.LOCK_KIND_FLOCK
TO_END = 0
LEASE = 1.0
ORPHAN_GRACE = 3.0


@dataclass
class Owner:
    """One lock owner in one session of a volume, on one file."""

    stub: filesystem_pb2_grpc.LocksStub
    volume_id: str
    session_id: str
    owner: int
    ino: int
    pid: int = 4242

    def lock(
        self, start: int = 0, length: int = TO_END, exclusive: bool = True, kind: int = RECORD
    ) -> pb.Lock:
        return pb.Lock(
            kind=kind,  # type: ignore[arg-type]
            exclusive=exclusive,
            start=start,
            length=length,
            owner=self.owner,
            pid=self.pid,
        )

    def acquire(self, *args: int, **kwargs: int) -> pb.AcquireLockResponse:
        request = pb.AcquireLockRequest(
            volume_id=self.volume_id,
            session_id=self.session_id,
            ino=self.ino,
            lock=self.lock(*args, **kwargs),  # type: ignore[arg-type]
        )
        return self.stub.AcquireLock(request)

    def granted(self, *args: int, **kwargs: int) -> bool:
        return self.acquire(*args, **kwargs).granted

    def release(self, start: int = 0, length: int = TO_END, kind: int = RECORD) -> bool:
        request = pb.ReleaseLockRequest(
            volume_id=self.volume_id,
            session_id=self.session_id,
            ino=self.ino,
            kind=kind,  # type: ignore[arg-type]
            owner=self.owner,
            start=start,
            length=length,
        )
        return self.stub.ReleaseLock(request).owner_holds_more

    def test(self, *args: int, **kwargs: int) -> pb.Lock | None:
        request = pb.TestLockRequest(
            volume_id=self.volume_id,
            session_id=self.session_id,
            ino=self.ino,
            lock=self.lock(*args, **kwargs),  # type: ignore[arg-type]
        )
        reply = self.stub.TestLock(request)
        return reply.conflict if reply.HasField("conflict") else None

    def renew(self) -> bool:
        request = pb.RenewLockSessionRequest(volume_id=self.volume_id, session_id=self.session_id)
        return self.stub.RenewLockSession(request).renewed

    def close(self) -> None:
        request = pb.CloseLockSessionRequest(volume_id=self.volume_id, session_id=self.session_id)
        self.stub.CloseLockSession(request)

    def claims(self, *session_ids: str) -> tuple[set[str], set[str]]:
        """Of these sessions, the live ones and those lapsed within the orphan grace."""
        request = pb.LiveLockSessionsRequest(volume_id=self.volume_id, session_ids=session_ids)
        reply = self.stub.LiveLockSessions(request)
        return set(reply.live), set(reply.lapsed)

    def other(self, owner: int) -> "Owner":
        """Another owner in the same session."""
        return Owner(self.stub, self.volume_id, self.session_id, owner, self.ino)


class Locking:
    """Sessions of one volume, and owners in them, on one file."""

    def __init__(self, vol: Volume, ino: int | None = None) -> None:
        self.vol = vol
        self.stub = filesystem_pb2_grpc.LocksStub(connect(vol.server.client_settings()))
        self.ino = vol.mknod("locked").ino if ino is None else ino

    def session(self, owner: int = 1) -> Owner:
        reply = self.stub.OpenLockSession(
            pb.OpenLockSessionRequest(volume_id=self.vol.id, client="test:/mnt")
        )
        return Owner(self.stub, self.vol.id, reply.session_id, owner, self.ino)


@pytest.fixture
def locking(vol: Volume) -> Locking:
    return Locking(vol)


@pytest.fixture
def short_lease(tmp_path: Path) -> Iterator[StorageServer]:
    """A server of the test's own whose sessions expire after LEASE seconds and
    are forgotten ORPHAN_GRACE seconds later."""
    server = StorageServer(
        tmp_path / "server",
        extra_args=(*short_sessions(LEASE, ORPHAN_GRACE), "--collect-interval-seconds", "0.5"),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_record_locks_conflict_across_sessions(locking: Locking) -> None:
    a, b = locking.session(), locking.session()
    assert a.granted(0, 100)
    reply = b.acquire(50, 10)
    assert not reply.granted
    # Another session's pid would name an unrelated process on the caller's node.
    assert (reply.conflict.start, reply.conflict.length, reply.conflict.pid) == (0, 100, 0)
    assert reply.conflict.exclusive and reply.conflict.owner == a.owner
    assert b.granted(100, 100)
    assert not a.granted(150, TO_END, exclusive=False)
    assert a.granted(200, TO_END, exclusive=False)
    assert b.granted(300, 10, exclusive=False)  # read locks share
    assert not b.granted(2**40, 1)  # A's read lock reaches to the end of the file


def test_owners_of_one_session_conflict_and_see_pids(locking: Locking) -> None:
    a = locking.session(owner=1)
    a2 = a.other(owner=2)
    assert a.granted(0, 10)
    conflict = a2.test(5, 1)
    assert conflict is not None
    assert (conflict.start, conflict.length, conflict.pid) == (0, 10, a.pid)
    assert not a2.granted(5, 1)


def test_an_owner_relocks_and_unlocks_parts_of_its_ranges(locking: Locking) -> None:
    a, b = locking.session(), locking.session()
    assert a.granted(0, 100, exclusive=False)
    assert b.granted(0, 100, exclusive=False)
    assert not a.granted(40, 20)  # B's read lock stands in the way of the upgrade
    assert a.test(40, 20) is not None
    assert b.release(0, 100) is False
    assert a.granted(40, 20)  # now the upgrade goes through, in the middle
    assert b.granted(0, 40, exclusive=False)
    assert b.granted(60, 40, exclusive=False)
    assert not b.granted(50, 1, exclusive=False)
    # Unlocking the middle of the write lock splits it.
    assert a.release(45, 10) is True
    assert b.granted(45, 10)
    assert not b.granted(44, 2)
    assert not b.granted(55, 1)
    assert a.release() is False
    assert b.granted(0, TO_END)


def test_racing_sessions_get_one_lock_among_them(locking: Locking) -> None:
    contenders = [locking.session() for _ in range(8)]
    for _ in range(5):
        with ThreadPoolExecutor(len(contenders)) as pool:
            granted = list(pool.map(lambda owner: owner.granted(), contenders))
        assert granted.count(True) == 1
        contenders[granted.index(True)].release()


def test_flock_and_record_locks_never_conflict(locking: Locking) -> None:
    a, b = locking.session(), locking.session()
    assert a.granted(kind=FLOCK)
    assert b.granted(kind=RECORD)
    assert not b.granted(kind=FLOCK, exclusive=False)
    assert b.test(kind=FLOCK) is not None
    assert a.release(kind=FLOCK) is False
    assert b.granted(kind=FLOCK, exclusive=False)
    assert a.granted(kind=FLOCK, exclusive=False)


def test_a_flock_that_cannot_be_converted_is_dropped_as_linux_does(locking: Locking) -> None:
    a, b = locking.session(), locking.session()
    assert a.granted(kind=FLOCK, exclusive=False)
    assert b.granted(kind=FLOCK, exclusive=False)
    assert not a.granted(kind=FLOCK)  # A's shared lock is gone now...
    assert b.granted(kind=FLOCK)  # ...so B's conversion goes through


def test_release_says_whether_the_owner_holds_more(locking: Locking) -> None:
    a = locking.session()
    other_file = Owner(a.stub, a.volume_id, a.session_id, a.owner, locking.vol.mknod("other").ino)
    assert a.granted(0, 10)
    assert other_file.granted(0, 10)
    assert a.release() is True
    assert other_file.release(0, 5) is True
    assert other_file.release() is False
    assert a.release() is False  # releasing nothing is fine


def test_owner_numbers_keep_all_64_bits(locking: Locking) -> None:
    a = locking.session(owner=2**64 - 1)
    a2 = a.other(owner=2**63 - 1)
    assert a.granted(0, 1)
    assert not a2.granted(0, 1)
    assert a2.acquire(0, 1).conflict.owner == 2**64 - 1
    assert a.release() is False


def test_closing_a_session_drops_its_locks(locking: Locking) -> None:
    a, b = locking.session(), locking.session()
    assert a.granted()
    assert a.granted(kind=FLOCK)
    a.close()
    a.close()  # closing what is gone succeeds
    assert b.granted()
    assert b.granted(kind=FLOCK)
    assert errno_of(lambda: a.acquire(0, 1)) == errno.ENOLCK
    assert a.renew() is False


def test_deleting_a_file_drops_its_locks(locking: Locking) -> None:
    a = locking.session()
    assert a.granted()
    locking.vol.unlink("locked")
    assert a.release() is False
    assert errno_of(a.acquire) == errno.ENOENT


def test_a_lock_call_its_client_gave_up_on_takes_no_effect(locking: Locking) -> None:
    """A call the client cancelled (its process was killed) while the server
    was slow to take it up must not land after what the client sends next."""
    a, b = locking.session(), locking.session()
    assert a.granted(0, 10)
    request = pb.AcquireLockRequest(
        volume_id=a.volume_id, session_id=a.session_id, ino=a.ino, lock=a.lock(20, 10)
    )
    release = pb.ReleaseLockRequest(
        volume_id=a.volume_id, session_id=a.session_id, ino=a.ino, kind=RECORD, owner=a.owner
    )
    database = Database(make_engine(locking.vol.server.resolved_database_url))
    try:
        with database.write() as session:
            inodes.lock(session, locking.vol.id, locking.ino)  # the server waits for it
            acquiring = a.stub.AcquireLock.future(request)
            releasing = a.stub.ReleaseLock.future(release)
            time.sleep(0.5)
            acquiring.cancel()
            releasing.cancel()
            time.sleep(0.5)  # the cancels reach the server
    finally:
        database.close()
    time.sleep(2.0)  # the abandoned calls run (old code: and commit)
    # a holds what it held before: neither abandoned call landed.
    assert b.granted(20, 10)
    assert not b.granted(0, 10)


def test_bad_lock_requests_are_refused(locking: Locking) -> None:
    a = locking.session()
    with pytest.raises(grpc.RpcError) as info:
        a.acquire(0, 1, kind=0)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        a.acquire(2**63 - 1, 1)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        locking.stub.OpenLockSession(pb.OpenLockSessionRequest(volume_id="no-such-volume"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    missing = Owner(a.stub, a.volume_id, a.session_id, a.owner, ino=2**40)
    assert errno_of(missing.acquire) == errno.ENOENT


def test_a_session_that_is_not_renewed_loses_its_locks(short_lease: StorageServer) -> None:
    locking = Locking(Volume(short_lease))
    silent, renewing = locking.session(), locking.session()
    assert silent.granted(0, 10)
    assert renewing.granted(10, 10)
    deadline = time.monotonic() + 2.5 * LEASE
    while time.monotonic() < deadline:
        assert renewing.renew()
        time.sleep(LEASE / 4)
    late = locking.session()
    assert late.granted(0, 10)  # the silent session's lock is gone
    assert not late.granted(10, 10)  # the renewed one's is not
    assert silent.renew() is False
    assert errno_of(lambda: silent.acquire(30, 1)) == errno.ENOLCK


def _renew_for(seconds: float, *renewing: Owner) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for owner in renewing:
            assert owner.renew()
        time.sleep(LEASE / 4)


def test_sessions_are_live_then_lapsed_for_the_orphan_grace_then_gone(
    short_lease: StorageServer,
) -> None:
    first, second = Locking(Volume(short_lease, "one")), Locking(Volume(short_lease, "two"))
    renewing, closed, silent, idle = (first.session() for _ in range(4))
    elsewhere = second.session()
    ids = [s.session_id for s in (renewing, closed, silent, idle, elsewhere)]
    closed.close()
    live = {renewing.session_id, silent.session_id, idle.session_id}
    assert renewing.claims(*ids, "no-such-session") == (live, set())
    _renew_for(1.5 * LEASE, renewing)
    lapsed = {silent.session_id, idle.session_id}
    assert renewing.claims(*ids) == ({renewing.session_id}, lapsed)
    assert silent.renew() is False  # lapsed (now, or by the background job before)
    # Only the volume's own sessions (elsewhere was not renewed either).
    assert elsewhere.claims(*ids) == (set(), {elsewhere.session_id})
    _renew_for(ORPHAN_GRACE + 1.0, renewing)
    assert renewing.claims(*ids) == ({renewing.session_id}, set())
    closed_lapsed = first.session()
    _renew_for(1.5 * LEASE, renewing)
    closed_lapsed.close()  # a lapsed session's mount that ends cleanly
    assert renewing.claims(closed_lapsed.session_id) == (set(), set())
    with pytest.raises(grpc.RpcError) as info:
        renewing.claims(*[str(n) for n in range(sessions.LIVE_QUERY_MAX + 1)])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_restarted_server_gives_sessions_a_lease_to_come_back(
    short_lease: StorageServer,
) -> None:
    locking = Locking(Volume(short_lease))
    a, b = locking.session(), locking.session()
    assert a.granted()
    short_lease.stop()
    time.sleep(1.5 * LEASE)  # longer than the lease, while no server ran
    short_lease.start()
    assert not b.granted()
    assert a.renew()


def test_a_restarted_server_does_not_bring_lapsed_sessions_back(
    short_lease: StorageServer,
) -> None:
    locking = Locking(Volume(short_lease))
    a, b = locking.session(), locking.session()
    assert a.granted()
    _renew_for(1.5 * LEASE, b)
    assert b.granted()  # a lapsed, and its lock went
    short_lease.stop()
    short_lease.start()
    assert a.renew() is False
    assert not a.claims(a.session_id)[0]


# A model of POSIX record locks, byte by byte: positions 0..15, and TAIL for
# everything from 16 to the end of the file.
TAIL = 16
HOLDERS = 3  # two owners in one session, one in another


def _bytes(start: int, length: int) -> range:
    return range(start, TAIL + 1) if length == TO_END else range(start, start + length)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, HOLDERS - 1),
            st.sampled_from(["read", "write", "unlock"]),
            st.integers(0, 9),
            st.integers(0, 6),
        ),
        max_size=14,
    )
)
def test_record_locks_match_a_byte_model(
    shared_server: StorageServer, steps: list[tuple[int, str, int, int]]
) -> None:
    locking = Locking(Volume(shared_server))
    first, second = locking.session(owner=1), locking.session(owner=3)
    owners = [first, first.other(2), second]  # holder i is owner i + 1
    model: dict[int, dict[int, bool]] = {b: {} for b in range(TAIL + 1)}  # byte -> holder -> excl
    for who, op, start, length in steps:
        span = _bytes(start, length)
        if op == "unlock":
            owners[who].release(start, length)
            for b in span:
                model[b].pop(who, None)
            continue
        exclusive = op == "write"
        in_the_way = {
            other
            for b in span
            for other, held_exclusive in model[b].items()
            if other != who and (exclusive or held_exclusive)
        }
        reply = owners[who].acquire(start, length, exclusive=exclusive)
        assert reply.granted == (not in_the_way), (who, op, start, length)
        if reply.granted:
            for b in span:
                model[b][who] = exclusive
        else:
            # The lock reported is one that stands in the way, as the model holds it.
            holder, conflict = reply.conflict.owner - 1, reply.conflict
            assert holder in in_the_way
            assert all(
                model[b].get(holder) == conflict.exclusive
                for b in _bytes(conflict.start, conflict.length)
            )
