"""Advisory locks across nodes: flock and fcntl record locks taken on one node
block the other until released; a holder that dies releases at once, and a
node whose mount dies releases when its lock session's lease runs out."""

import os
import signal
import time
import uuid

from tests.multinode.conftest import LEASE, Pair, Worker, seen_on_b

# A waiter asks again with backoff of at most half a second.
HANDOVER = 2.0
STILL_WAITING = 1.0


def new_file(pair: Pair) -> str:
    """A file made on node A, once node B sees it; its name."""
    name = f"locked-{uuid.uuid4().hex[:8]}"
    (pair.a.path / name).write_bytes(b"x" * 1000)
    seen_on_b(pair, name)
    return name


def answer(worker: Worker) -> str:
    """What a worker that does not hold on said: "locked", "busy", or F_GETLK's finding."""
    worker.finish()
    (said,) = worker.said
    return said


def holds_after(waiter: Worker, released: float) -> float:
    """How long after `released` the waiting worker got its lock."""
    return waiter.wait_for("locked") - released


def test_flock_on_one_node_blocks_the_other_until_released(shared: Pair) -> None:
    name = new_file(shared)
    on_a, on_b = f"{shared.a.inside(name)}=", f"{shared.b.inside(name)}="
    holder = shared.run(shared.a, "lock", on_a + "flock-exclusive")
    holder.wait_for("locked")
    assert answer(shared.run(shared.b, "lock", on_b + "flock-exclusive")) == "busy"
    assert answer(shared.run(shared.b, "lock", on_b + "flock-shared")) == "busy"
    waiter = shared.run(shared.b, "lock", "--wait", on_b + "flock-exclusive")
    killed = shared.run(shared.b, "lock", "--wait", on_b + "flock-exclusive")
    time.sleep(STILL_WAITING)
    assert waiter.said == [] and killed.said == []
    # A process waiting for a lock can be killed: the wait answers FUSE interrupts.
    started = time.monotonic()
    assert killed.finish(signal.SIGKILL) == -signal.SIGKILL
    assert time.monotonic() - started < 1.0
    released = time.monotonic()
    holder.finish()
    assert holds_after(waiter, released) < HANDOVER
    waiter.finish()
    # Shared locks are shared across nodes.
    reader = shared.run(shared.a, "lock", on_a + "flock-shared")
    reader.wait_for("locked")
    assert answer(shared.run(shared.b, "lock", on_b + "flock-shared")) == "locked"


def test_fcntl_record_locks_on_one_node_block_overlapping_ranges_on_the_other(
    shared: Pair,
) -> None:
    name = new_file(shared)
    on_a, on_b = f"{shared.a.inside(name)}=", f"{shared.b.inside(name)}="
    holder = shared.run(shared.a, "lock", on_a + "write:0:100")
    holder.wait_for("locked")
    # F_GETLK on node B finds node A's lock (whose pid means nothing on node B).
    assert answer(shared.run(shared.b, "probe", shared.b.inside(name), "50:10")) == "write 0 100 0"
    assert answer(shared.run(shared.b, "probe", shared.b.inside(name), "100:10")) == "unlocked"
    assert answer(shared.run(shared.b, "lock", on_b + "read:50:10")) == "busy"
    assert answer(shared.run(shared.b, "lock", on_b + "write:100:100")) == "locked"
    waiter = shared.run(shared.b, "lock", "--wait", on_b + "write:0:10")
    time.sleep(STILL_WAITING)
    assert waiter.said == []
    released = time.monotonic()
    holder.finish()
    assert holds_after(waiter, released) < HANDOVER
    assert answer(shared.run(shared.a, "lock", on_a + "read:5:1")) == "busy"


def test_a_holder_that_dies_releases_its_locks(shared: Pair) -> None:
    flocked, ranged = new_file(shared), new_file(shared)
    holder = shared.run(
        shared.a,
        "lock",
        f"{shared.a.inside(flocked)}=flock-exclusive",
        f"{shared.a.inside(ranged)}=write:0:0",
    )
    holder.wait_for("locked")
    waiters = [
        shared.run(shared.b, "lock", "--wait", f"{shared.b.inside(flocked)}=flock-exclusive"),
        shared.run(shared.b, "lock", "--wait", f"{shared.b.inside(ranged)}=write:0:0"),
    ]
    time.sleep(STILL_WAITING)
    assert all(waiter.said == [] for waiter in waiters)
    died = time.monotonic()
    holder.finish(signal.SIGKILL)
    # Its files closed as it died: the kernel's flush and release drop its locks.
    for waiter in waiters:
        assert holds_after(waiter, died) < HANDOVER


def test_a_node_whose_mount_dies_loses_its_locks_when_the_lease_runs_out(pair: Pair) -> None:
    name = new_file(pair)
    holder = pair.run(pair.b, "lock", f"{pair.b.inside(name)}=write:0:0")
    holder.wait_for("locked")
    waiter = pair.run(pair.a, "lock", "--wait", f"{pair.a.inside(name)}=write:0:0")
    mount_pid = pair.b.mount_pid()
    died = time.monotonic()
    os.kill(mount_pid, signal.SIGKILL)
    # Nobody is left on node B to release the lock: its session must expire. The
    # last renewal came at most a quarter of the lease before the kill.
    waited = holds_after(waiter, died)
    assert 0.7 * LEASE <= waited <= LEASE + HANDOVER
