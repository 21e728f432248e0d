"""What a Write acknowledged survives kill -9 of the server; which calls wait for
the disk."""

import contextlib
import random
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import grpc
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server.db import Database, make_engine, migrate
from storage_server.filesystem.blobs import LocalBlobStore
from storage_server.filesystem.service import FilesystemService
from storage_server.settings import ServerSettings
from storage_server.volumes import VolumeStore
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


class _Recording(Database):
    """A database that notes whether each write transaction waits for the disk."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.durable: list[bool] = []

    @contextlib.contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        self.durable.append(durable)
        with super().write(durable) as session:
            yield session


def test_what_names_data_waits_for_the_disk(tmp_path: Path) -> None:
    """Inode numbers and data versions, once answered, are on stable storage: a
    power cut cannot hand one out again for another file or other data (mounts
    address files by number and keep cached blocks by version)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    db = _Recording(engine)
    try:
        volumes = VolumeStore(db, tmp_path / "blobs", 1 << 30)
        volume = volumes.create("v", 1 << 20, {})
        service = FilesystemService(
            db, volumes, LocalBlobStore(tmp_path / "blobs"), ServerSettings(data_dir=tmp_path)
        )
        context = cast(grpc.ServicerContext, None)  # the handlers do not use it

        def durable(call: Callable[[], object]) -> bool:
            db.durable.clear()
            call()
            assert db.durable
            return all(db.durable)

        def make(name: str, mode: int, target: str = "") -> pb.EntryReply:
            request = pb.MakeNodeRequest(
                volume_id=volume.id, parent=volume.root_ino, name=name, mode=mode, target=target
            )
            return service.MakeNode(request, context)

        made: list[pb.EntryReply] = []
        assert durable(lambda: made.append(make("f", stat.S_IFREG | 0o644)))
        assert durable(lambda: make("d", stat.S_IFDIR | 0o755))
        assert durable(lambda: make("l", stat.S_IFLNK, target="f"))
        ino = made[0].attr.ino
        link = pb.LinkRequest(
            volume_id=volume.id, ino=ino, new_parent=volume.root_ino, new_name="g"
        )
        assert not durable(lambda: service.Link(link, context))

        def set_attr(request: pb.SetAttrRequest) -> bool:
            request.volume_id, request.ino = volume.id, ino
            return durable(lambda: service.SetAttr(request, context))

        assert not set_attr(pb.SetAttrRequest(mode=0o600))
        assert not set_attr(pb.SetAttrRequest(mtime_ns=1))
        assert set_attr(pb.SetAttrRequest(size=10))
        assert set_attr(pb.SetAttrRequest(size=0))
        assert set_attr(pb.SetAttrRequest(size=0, mode=0o644))
    finally:
        db.close()
