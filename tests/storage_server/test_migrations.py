"""Schema migrations: a database made by the first schema version upgrades in place."""

import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import filesystem_pb2 as fpb
from storage_server.db import alembic_config, make_engine, migrate
from storage_server.models import Base
from tests.harness.server import StorageServer
from tests.harness.volume import Volume


def _revisions(engine: sa.Engine) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(engine))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_first_schema_upgrades_in_place(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "server"
    url = database_url or f"sqlite:///{data_dir / 'metadata.db'}"
    engine = make_engine(url)
    first = _revisions(engine)[0]
    migrate(engine, first)
    volume_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO volumes (id, name, size_bytes, used_bytes, parameters, created_at)"
                " VALUES (:id, 'old', 12345, 0, :params, :created)"
            ),
            {"id": volume_id, "params": '{"k": "v"}', "created": datetime.now(UTC)},
        )
    engine.dispose()

    # The server upgrades the schema when it starts, and the old row is intact.
    server = StorageServer(data_dir, database_url)
    try:
        server.start()
        volume = server.admin().GetVolume(pb.GetVolumeRequest(volume=pb.VolumeRef(name="old")))
        assert (volume.id, volume.size_bytes, dict(volume.parameters)) == (
            volume_id,
            12345,
            {"k": "v"},
        )
        # The upgrade gave the old volume a root directory that works like any other.
        fs = server.filesystem()
        opened = fs.OpenVolume(fpb.OpenVolumeRequest(name="old"))
        root = fs.GetAttr(fpb.GetAttrRequest(volume_id=volume_id, ino=opened.root_ino))
        assert stat.S_ISDIR(root.mode)
        assert root.nlink == 2
        listing = fs.ReadDir(fpb.ReadDirRequest(volume_id=volume_id, ino=opened.root_ino))
        assert list(listing.entries) == []
        made = fs.MakeNode(
            fpb.MakeNodeRequest(
                volume_id=volume_id, parent=opened.root_ino, name="new", mode=stat.S_IFREG | 0o644
            )
        )
        assert made.attr.ino != opened.root_ino
        assert fs.StatFs(fpb.StatFsRequest(volume_id=volume_id)).inodes == 2
    finally:
        server.stop()

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert version == _revisions(engine)[-1]
    finally:
        engine.dispose()


def _file_system_at_0002(engine: sa.Engine, content: bytes) -> str:
    """A volume holding one file, written as the 0002 schema keeps it; its id."""
    meta = sa.MetaData()
    volumes, inodes, dentries, slices = (
        sa.Table(name, meta, autoload_with=engine)
        for name in ("volumes", "inodes", "dentries", "slices")
    )
    volume_id = str(uuid.uuid4())
    inode = dict(nlink=1, uid=0, gid=0, rdev=0, atime_ns=1, mtime_ns=2, ctime_ns=3, data_version=1)
    with engine.begin() as conn:
        conn.execute(
            volumes.insert().values(
                id=volume_id,
                name="kept",
                size_bytes=2**30,
                used_bytes=len(content),
                parameters={},
                created_at=datetime.now(UTC),
            )
        )
        root, file = (
            int(
                conn.execute(
                    inodes.insert()
                    .values(volume_id=volume_id, mode=mode, size=size, allocated=size, **inode)
                    .returning(inodes.c.id)
                ).scalar_one()
            )
            for mode, size in ((stat.S_IFDIR | 0o777, 0), (stat.S_IFREG | 0o644, len(content)))
        )
        conn.execute(volumes.update().values(root_ino=root))
        conn.execute(dentries.insert().values(parent_ino=root, name="f", child_ino=file))
        conn.execute(
            slices.insert().values(
                ino=file, offset=0, length=len(content), blob_offset=0, data=content
            )
        )
    return volume_id


def test_0002_files_upgrade_in_place_and_can_be_snapshotted(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "server"
    url = database_url or f"sqlite:///{data_dir / 'metadata.db'}"
    engine = make_engine(url)
    migrate(engine, "0002")
    volume_id = _file_system_at_0002(engine, b"written before 0003")
    engine.dispose()

    server = StorageServer(data_dir, database_url)
    try:
        server.start()
        admin = server.admin()
        (listed,) = admin.ListVolumes(pb.ListVolumesRequest()).volumes
        assert (listed.id, listed.name, listed.used_bytes) == (volume_id, "kept", 19)
        assert not listed.HasField("content_source")
        snapshot = admin.CreateSnapshot(
            pb.CreateSnapshotRequest(name="s", source_volume=pb.VolumeRef(name="kept"))
        )
        source = pb.ContentSource(snapshot=pb.SnapshotRef(id=snapshot.id))
        restored = Volume(server, source=source)
        assert restored.read(restored.lookup("f").ino) == b"written before 0003"
        assert restored.used() == snapshot.used_bytes == 19
    finally:
        server.stop()

    # Going back to 0002 drops the snapshots, which it could not tell from volumes.
    engine = make_engine(url)
    try:
        command.downgrade(alembic_config(engine), "0002")
        with engine.connect() as conn:
            names = set(conn.scalars(sa.text("SELECT name FROM volumes")))
            inodes = conn.execute(sa.text("SELECT count(*) FROM inodes")).scalar()
        assert names == {"kept", restored.name}
        assert inodes == 4
        migrate(engine)
    finally:
        engine.dispose()


def test_migrations_build_the_models_schema(tmp_path: Path, database_url: str) -> None:
    """The migrations and the ORM models describe the same tables and columns."""
    url = database_url or f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    try:
        migrate(engine)
        inspector = sa.inspect(engine)
        for table in Base.metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
    finally:
        engine.dispose()
