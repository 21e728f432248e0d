"""What a Write acknowledged survives kill -9 of the server; which calls wait for
the disk."""

import contextlib
import random
import stat
from collections.abc import Iterator
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


def test_a_change_of_data_waits_for_the_disk(tmp_path: Path) -> None:
    """A data version once answered is on stable storage, so that a power cut
    cannot hand it out again for other data (mounts keep blocks by version)."""
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
        made = service.MakeNode(
            pb.MakeNodeRequest(
                volume_id=volume.id, parent=volume.root_ino, name="f", mode=stat.S_IFREG | 0o644
            ),
            context,
        )

        def durable(request: pb.SetAttrRequest) -> bool:
            db.durable.clear()
            request.volume_id, request.ino = volume.id, made.attr.ino
            service.SetAttr(request, context)
            assert db.durable
            return all(db.durable)

        assert not durable(pb.SetAttrRequest(mode=0o600))
        assert not durable(pb.SetAttrRequest(mtime_ns=1))
        assert durable(pb.SetAttrRequest(size=10))
        assert durable(pb.SetAttrRequest(size=0))
        assert durable(pb.SetAttrRequest(size=0, mode=0o644))
    finally:
        db.close()
