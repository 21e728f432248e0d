"""What a Write acknowledged survives kill -9 of the server."""

import random
import stat

from proto.netvol.v1 import filesystem_pb2 as pb
from tests.harness.server import StorageServer
from tests.harness.volume import Volume, sha256

MiB = 1024 * 1024


def test_acknowledged_writes_survive_kill_9(server: StorageServer) -> None:
    vol = Volume(server)
    rng = random.Random(9)
    # One file kept inline in the metadata, one in blobs.
    contents = {"small": rng.randbytes(1000), "big": rng.randbytes(5 * MiB + 3)}
    directory = vol.mkdir("d")
    attrs = {name: vol.create(name, data, parent=directory.ino) for name, data in contents.items()}
    vol.mknod("link", stat.S_IFLNK, target="big", parent=directory.ino)
    before = vol.statfs()

    server.kill9()
    server.start()

    again = Volume.__new__(Volume)
    again.fs, again.id, again.root = server.filesystem(), vol.id, vol.root
    assert again.statfs() == before
    assert again.names(directory.ino) == ["big", "link", "small"]
    for name, data in contents.items():
        assert again.getattr(attrs[name].ino) == attrs[name]
        assert sha256(again.read(attrs[name].ino)) == sha256(data)
    link = again.lookup("link", directory.ino)
    assert again.fs.ReadLink(pb.ReadLinkRequest(volume_id=vol.id, ino=link.ino)).target == "big"
