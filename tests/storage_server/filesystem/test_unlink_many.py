"""UnlinkMany: several unlinks in one call, each succeeding or failing alone."""

import errno
import time

import grpc
import pytest

from tests.harness.volume import Volume, errno_of, new_request_id


def test_each_unlink_succeeds_or_fails_alone(vol: Volume) -> None:
    a = vol.create("a", b"x" * 5000)
    vol.mkdir("d")
    vol.create("c")
    before = vol.used()

    outcomes = vol.unlink_many("a", "missing", "d", "c", "a")

    assert [o.errno for o in outcomes] == [0, errno.ENOENT, errno.EISDIR, 0, errno.ENOENT]
    assert (outcomes[0].reply.ino, outcomes[0].reply.nlink) == (a.ino, 0)
    assert outcomes[3].reply.parent == vol.getattr(vol.root)
    # The failed ones changed nothing: the directory is still there, the bytes freed.
    assert vol.names() == ["d"]
    assert vol.used() == before - 5000
    assert vol.statfs().inodes == 2


def test_a_hard_link_keeps_the_inode(vol: Volume) -> None:
    file = vol.create("a", b"data")
    vol.link(file.ino, "b")
    (outcome,) = vol.unlink_many("a")
    assert (outcome.errno, outcome.reply.nlink) == (0, 1)
    assert vol.read(vol.lookup("b").ino) == b"data"


def test_both_names_of_a_hard_link_in_one_call(vol: Volume) -> None:
    before = vol.used()
    file = vol.create("a", b"x" * 3000)
    vol.link(file.ino, "b")
    outcomes = vol.unlink_many("a", "b")
    assert [(o.errno, o.reply.ino, o.reply.nlink) for o in outcomes] == [
        (0, file.ino, 1),
        (0, file.ino, 0),
    ]
    assert errno_of(lambda: vol.getattr(file.ino)) == errno.ENOENT
    assert vol.used() == before
    assert vol.statfs().inodes == 1


def test_names_of_several_directories(vol: Volume) -> None:
    one, two = vol.mkdir("one"), vol.mkdir("two")
    vol.create("x", parent=one.ino)
    vol.create("y", parent=two.ino)
    file = vol.create("f")
    time.sleep(0.01)  # so that the directories' times visibly move

    outcomes = vol.unlink_many(
        (one.ino, "x"),
        (file.ino, "z"),
        (two.ino, "y"),
        (2**40, "w"),
        (vol.root, ""),
        (vol.root, "a/b"),
        (two.ino, "y"),
    )

    assert [o.errno for o in outcomes] == [
        0,
        errno.ENOTDIR,
        0,
        errno.ENOENT,
        errno.EINVAL,
        errno.EINVAL,
        errno.ENOENT,
    ]
    after_one, after_two = vol.getattr(one.ino), vol.getattr(two.ino)
    assert outcomes[0].reply.parent == after_one and outcomes[2].reply.parent == after_two
    assert after_one.mtime_ns > one.mtime_ns and after_two.mtime_ns > two.mtime_ns
    assert after_one.nlink == one.nlink and vol.names(one.ino) == vol.names(two.ino) == []
    assert vol.names() == ["f", "one", "two"]


def test_the_most_names_a_call_takes(vol: Volume) -> None:
    names = [f"file{i:04d}" for i in range(1000)]
    for name in names:
        vol.create(name, b"z")
    outcomes = vol.unlink_many(*names)
    assert [o.errno for o in outcomes] == [0] * 1000
    assert vol.names() == [] and vol.used() == 0 and vol.statfs().inodes == 1


def test_retried_call_is_applied_once(vol: Volume) -> None:
    vol.create("a")
    rid = new_request_id()
    first = vol.unlink_many("a", request_id=rid)
    # A new file of the same name must survive the retry.
    new = vol.create("a")
    assert vol.unlink_many("a", request_id=rid) == first
    assert vol.lookup("a") == new


def test_too_many_names_are_refused(vol: Volume) -> None:
    vol.create("a")
    with pytest.raises(grpc.RpcError) as info:
        vol.unlink_many(*["a"] * 1001)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert vol.names() == ["a"]
