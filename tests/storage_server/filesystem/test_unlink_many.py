"""UnlinkMany: several unlinks in one call, each succeeding or failing alone."""

import errno

import grpc
import pytest

from tests.harness.volume import Volume, new_request_id


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
