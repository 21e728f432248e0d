"""A mutating call sent twice with one request id is applied once and answered
the same both times, even when the world changed in between."""

import errno

import grpc
import pytest

from proto.netvol.v1 import filesystem_pb2 as pb
from tests.harness.volume import Volume, errno_of, new_request_id


def test_make_node_twice(vol: Volume) -> None:
    rid = new_request_id()
    first = vol.mknod("f", request_id=rid)
    again = vol.mknod("f", request_id=rid)
    assert again == first
    assert vol.names() == ["f"]
    assert vol.statfs().inodes == 2
    # Another request id is another call.
    assert errno_of(lambda: vol.mknod("f", request_id=new_request_id())) == errno.EEXIST


def test_a_failure_is_remembered_too(vol: Volume) -> None:
    vol.mknod("f")
    rid = new_request_id()
    assert errno_of(lambda: vol.mknod("f", request_id=rid)) == errno.EEXIST
    vol.unlink("f")
    assert errno_of(lambda: vol.mknod("f", request_id=rid)) == errno.EEXIST
    assert vol.names() == []


def test_unlink_twice(vol: Volume) -> None:
    file = vol.mknod("f")
    rid = new_request_id()
    first = vol.unlink("f", request_id=rid)
    assert (first.ino, first.nlink) == (file.ino, 0)
    # A new file of the same name must survive the retry.
    new = vol.mknod("f")
    assert vol.unlink("f", request_id=rid) == first
    assert vol.lookup("f") == new


def test_rename_twice(vol: Volume) -> None:
    a = vol.mknod("a")
    b = vol.mknod("b")
    rid = new_request_id()
    assert vol.rename("a", "b", request_id=rid) == b.ino
    vol.mknod("a")
    assert vol.rename("a", "b", request_id=rid) == b.ino
    assert sorted(vol.names()) == ["a", "b"]
    assert vol.lookup("b").ino == a.ino


def test_write_twice(vol: Volume) -> None:
    file = vol.mknod("f")
    rid = new_request_id()
    first = vol.write(file.ino, 0, b"first", request_id=rid)
    vol.write(file.ino, 0, b"later")
    again = vol.write(file.ino, 0, b"first", request_id=rid)
    assert again == first
    assert vol.read(file.ino) == b"later"
    assert vol.getattr(file.ino).data_version == 2


def test_setattr_link_and_xattrs_twice(vol: Volume) -> None:
    file = vol.mknod("f")
    rid = new_request_id()
    first = vol.setattr(file.ino, request_id=rid, mtime_now=True)
    assert vol.setattr(file.ino, request_id=rid, mtime_now=True) == first

    rid = new_request_id()
    link = pb.LinkRequest(
        volume_id=vol.id, request_id=rid, ino=file.ino, new_parent=vol.root, new_name="g"
    )
    assert vol.fs.Link(link) == vol.fs.Link(link)
    assert vol.getattr(file.ino).nlink == 2

    rid = new_request_id()
    put = pb.SetXattrRequest(volume_id=vol.id, request_id=rid, ino=file.ino, name="user.x", flags=1)
    vol.fs.SetXattr(put)
    vol.fs.SetXattr(put)
    remove = pb.RemoveXattrRequest(
        volume_id=vol.id, request_id=new_request_id(), ino=file.ino, name="user.x"
    )
    vol.fs.RemoveXattr(remove)
    vol.fs.RemoveXattr(remove)


def test_request_ids_are_per_volume(vol: Volume) -> None:
    other = Volume(vol.server)
    rid = new_request_id()
    vol.mknod("f", request_id=rid)
    other.mknod("g", request_id=rid)
    assert (vol.names(), other.names()) == (["f"], ["g"])


def test_overlong_request_id(vol: Volume) -> None:
    with pytest.raises(grpc.RpcError) as info:
        vol.mknod("f", request_id="r" * 129)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert vol.names() == []


def test_sync_needs_a_request_id_and_answers_once(vol: Volume) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        vol.fs.Sync(pb.SyncRequest(volume_id=vol.id))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = pb.SyncRequest(volume_id=vol.id, request_id=new_request_id())
    assert vol.fs.Sync(request) == vol.fs.Sync(request) == pb.SyncResponse()
