"""Copies of a volume's files and the blob collector: a copy's slice rows are
unseen until it commits, so the collector must not take a blob that only the
copy will name (storage_server.filesystem.copy, models.CollectorGate)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy.orm import Session

from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server import volumes
from storage_server.db import Database, make_engine
from storage_server.filesystem.blobs import LocalBlobStore
from storage_server.filesystem.collector import collect
from storage_server.volumes import VolumeKey
from tests.harness.postgres import fresh_database
from tests.harness.server import StorageServer
from tests.harness.volume import Volume

GiB = 2**30
DATA = bytes(range(256)) * 4096


def _blobs(server: StorageServer) -> set[str]:
    return {p.name for p in server.blob_dir.glob("*/*")}


class Copy:
    """A copy of a volume into a new one, run by Database.consistent_write."""

    def __init__(self, source_id: str, name: str) -> None:
        self.source_id = source_id
        self.name = name
        self.attempts = 0

    def __call__(self, session: Session) -> str:
        self.attempts += 1
        source = volumes.find(session, VolumeKey(id=self.source_id))
        self.before_copying()
        copied = volumes.add(session, name=self.name, size=GiB, parameters={}, copy_of=source)
        self.after_copying()
        return copied.id

    def before_copying(self) -> None:
        """Runs once the transaction has its view of the database."""

    def after_copying(self) -> None:
        """Runs before the transaction commits."""


def _read_copy(server: StorageServer, name: str) -> bytes:
    fs = server.filesystem()
    opened = fs.OpenVolume(pb.OpenVolumeRequest(name=name))
    node = fs.Lookup(pb.LookupRequest(volume_id=opened.volume_id, parent=opened.root_ino, name="f"))
    request = pb.ReadRequest(volume_id=opened.volume_id, ino=node.ino, offset=0, length=len(DATA))
    return b"".join(chunk.data for chunk in fs.Read(request))


def test_collection_waits_for_a_copy_in_flight(server: StorageServer, db: Database) -> None:
    """The source's last reference to a blob goes, and the collector runs,
    while a copy that names the blob has not committed: the blob stays."""
    vol = Volume(server)
    vol.create("f", DATA)
    blobs = _blobs(server)
    copying, finish = threading.Event(), threading.Event()

    class Held(Copy):
        def after_copying(self) -> None:
            copying.set()
            assert finish.wait(30)

    with ThreadPoolExecutor(3) as pool:
        copied = pool.submit(db.consistent_write, Held(vol.id, "copy"))
        assert copying.wait(30)
        unlinked = pool.submit(vol.unlink, "f")
        collected = pool.submit(collect, db, LocalBlobStore(server.blob_dir), 0)
        time.sleep(1)
        assert not collected.done()
        finish.set()
        copied.result(30)
        unlinked.result(30)
        assert collected.result(30) == 0
    assert _blobs(server) == blobs
    assert _read_copy(server, "copy") == DATA


def test_a_copy_that_saw_the_database_before_a_collection_runs_again(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    """On PostgreSQL a copy's view of the database may be older than a
    collection that got the gate first: the copy then starts over. (SQLite's
    write lock keeps the collector out of a copy altogether.)"""
    with fresh_database(postgres_admin_url) as url:
        server = StorageServer(tmp_path / "server", url)
        db = Database(make_engine(url))
        try:
            server.start()
            vol = Volume(server)
            vol.create("f", DATA)
            collector_runs = 0

            class Overtaken(Copy):
                def before_copying(self) -> None:
                    nonlocal collector_runs
                    if self.attempts == 1:
                        collector_runs += 1
                        collect(db, LocalBlobStore(server.blob_dir), 0)

            copy = Overtaken(vol.id, "copy")
            db.consistent_write(copy)
            assert (collector_runs, copy.attempts) == (1, 2)
            assert _read_copy(server, "copy") == DATA
        finally:
            db.close()
            server.stop()
