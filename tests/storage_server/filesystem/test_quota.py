"""A volume never holds more than its size: ENOSPC changes nothing, and growing
the volume lets the same write through."""

import errno

from proto.netvol.v1 import admin_pb2 as apb
from tests.harness.server import StorageServer
from tests.harness.volume import Volume, errno_of

MiB = 1024 * 1024


def test_enospc_changes_nothing_until_the_volume_grows(any_store_server: StorageServer) -> None:
    vol = Volume(any_store_server, size=MiB)
    first = vol.create("a", b"a" * (MiB - 10))
    other = vol.create("b", b"b" * 5)
    assert vol.used() == MiB - 5

    assert errno_of(lambda: vol.write(other.ino, 5, b"c" * 6)) == errno.ENOSPC
    assert errno_of(lambda: vol.write(other.ino, 0, b"c" * MiB)) == errno.ENOSPC
    assert vol.used() == MiB - 5
    assert vol.getattr(other.ino) == other
    assert vol.read(other.ino) == b"b" * 5
    # Overwriting bytes already held costs nothing, and a hole is free.
    assert vol.write(first.ino, 0, b"z" * 100).allocated == MiB - 10
    assert vol.setattr(other.ino, size=100 * MiB).allocated == 5
    assert vol.write(other.ino, 5, b"c" * 5).allocated == 10
    assert vol.used() == MiB

    admin = any_store_server.admin()
    grown = admin.ResizeVolume(
        apb.ResizeVolumeRequest(volume=apb.VolumeRef(name=vol.name), size_bytes=2 * MiB)
    )
    assert (grown.size_bytes, grown.used_bytes) == (2 * MiB, MiB)
    attr = vol.write(other.ino, 0, b"c" * MiB)
    assert attr.allocated == MiB
    assert vol.read(other.ino, 0, MiB) == b"c" * MiB
    assert vol.statfs().used_bytes == 2 * MiB - 10
    assert errno_of(lambda: vol.write(other.ino, 2 * MiB, b"x" * 11)) == errno.ENOSPC


def test_freeing_space(vol: Volume) -> None:
    a = vol.create("a", b"a" * 1000)
    vol.create("b", b"b" * 500)
    assert vol.used() == 1500
    vol.setattr(a.ino, size=100)
    assert vol.used() == 600
    vol.unlink("a")
    assert vol.used() == 500
    vol.unlink("b")
    assert vol.used() == 0
    volume = vol.server.admin().GetVolume(apb.GetVolumeRequest(volume=apb.VolumeRef(name=vol.name)))
    assert volume.used_bytes == 0
