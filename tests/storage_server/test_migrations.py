"""Schema migrations: a database made by the first schema version upgrades in place."""

import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import filesystem_pb2 as fpb
from storage_server.db import alembic_config, make_engine, migrate
from storage_server.models import Base
from tests.harness.server import StorageServer


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
        assert made.ino != opened.root_ino
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
