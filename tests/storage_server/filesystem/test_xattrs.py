"""Extended attributes with Linux's flags and limits."""

import errno

from proto.netvol.v1 import filesystem_pb2 as pb
from tests.harness.volume import Volume, errno_of

CREATE = 1
REPLACE = 2


def test_xattrs(vol: Volume) -> None:
    file = vol.mknod("f")

    def get(name: str) -> bytes:
        return vol.fs.GetXattr(pb.GetXattrRequest(volume_id=vol.id, ino=file.ino, name=name)).value

    def put(name: str, value: bytes, flags: int = 0) -> None:
        vol.fs.SetXattr(
            pb.SetXattrRequest(volume_id=vol.id, ino=file.ino, name=name, value=value, flags=flags)
        )

    def remove(name: str) -> None:
        vol.fs.RemoveXattr(pb.RemoveXattrRequest(volume_id=vol.id, ino=file.ino, name=name))

    def names() -> list[str]:
        return list(vol.fs.ListXattr(pb.ListXattrRequest(volume_id=vol.id, ino=file.ino)).names)

    assert names() == []
    assert errno_of(lambda: get("user.missing")) == errno.ENODATA
    put("user.b", b"\x00binary\xff")
    put("user.a", b"")
    assert get("user.b") == b"\x00binary\xff"
    assert get("user.a") == b""
    assert names() == ["user.a", "user.b"]
    assert vol.getattr(file.ino).ctime_ns > file.ctime_ns

    assert errno_of(lambda: put("user.a", b"x", CREATE)) == errno.EEXIST
    assert errno_of(lambda: put("user.c", b"x", REPLACE)) == errno.ENODATA
    assert errno_of(lambda: put("user.c", b"x", CREATE | REPLACE)) == errno.EINVAL
    put("user.a", b"replaced", REPLACE)
    put("user.c", b"created", CREATE)
    assert (get("user.a"), get("user.c")) == (b"replaced", b"created")

    put("user." + "n" * 250, b"v" * 65536)
    assert len(get("user." + "n" * 250)) == 65536
    assert errno_of(lambda: put("user." + "n" * 251, b"v")) == errno.ERANGE
    assert errno_of(lambda: put("", b"v")) == errno.ERANGE
    assert errno_of(lambda: get("user." + "n" * 251)) == errno.ERANGE
    assert errno_of(lambda: put("user.big", b"v" * 65537)) == errno.E2BIG

    remove("user.a")
    assert errno_of(lambda: remove("user.a")) == errno.ENODATA
    assert errno_of(lambda: get("user.a")) == errno.ENODATA
    assert names() == ["user.b", "user.c", "user." + "n" * 250]

    directory = vol.mkdir("d")
    vol.fs.SetXattr(pb.SetXattrRequest(volume_id=vol.id, ino=directory.ino, name="user.d"))
    assert list(
        vol.fs.ListXattr(pb.ListXattrRequest(volume_id=vol.id, ino=directory.ino)).names
    ) == ["user.d"]
    missing = pb.ListXattrRequest(volume_id=vol.id, ino=2**40)
    assert errno_of(lambda: vol.fs.ListXattr(missing)) == errno.ENOENT
    # The attributes go with the inode.
    vol.unlink("f")
    assert errno_of(names) == errno.ENOENT
