"""filesystem: inodes, dentries, slices, xattrs, requests; a root directory per volume

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import stat
import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Kept here rather than imported: a migration must not change when the code does.
ROOT_MODE = stat.S_IFDIR | 0o777
INODE_NUMBER = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _inode_ref(name: str, *, primary_key: bool = False, index: bool = False) -> sa.Column[int]:
    return sa.Column(
        name,
        sa.BigInteger,
        sa.ForeignKey("inodes.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
        index=index,
    )


def upgrade() -> None:
    op.add_column("volumes", sa.Column("root_ino", sa.BigInteger, nullable=True))
    inodes = op.create_table(
        "inodes",
        sa.Column("id", INODE_NUMBER, primary_key=True, autoincrement=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in (
                "mode",
                "nlink",
                "uid",
                "gid",
                "rdev",
                "size",
                "allocated",
                "atime_ns",
                "mtime_ns",
                "ctime_ns",
                "data_version",
            )
        ),
        sa.Column("target", sa.Text, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dentries",
        _inode_ref("parent_ino", primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        _inode_ref("child_ino", index=True),
    )
    op.create_table(
        "slices",
        _inode_ref("ino", primary_key=True),
        sa.Column("offset", sa.BigInteger, primary_key=True),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("blob_id", sa.String(32), nullable=True, index=True),
        sa.Column("blob_offset", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=True),
    )
    op.create_table(
        "xattrs",
        _inode_ref("ino", primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "requests",
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("response", sa.LargeBinary, nullable=True),
        sa.Column("errno", sa.Integer, nullable=True),
    )
    _give_volumes_a_root(inodes)


def _give_volumes_a_root(inodes: sa.Table) -> None:
    conn = op.get_bind()
    volumes = sa.table("volumes", sa.column("id", sa.String), sa.column("root_ino", sa.BigInteger))
    now = time.time_ns()
    for (volume_id,) in conn.execute(sa.select(volumes.c.id)).all():
        root: int = conn.execute(
            inodes.insert()
            .values(
                volume_id=volume_id,
                mode=ROOT_MODE,
                nlink=2,
                uid=0,
                gid=0,
                rdev=0,
                size=0,
                allocated=0,
                atime_ns=now,
                mtime_ns=now,
                ctime_ns=now,
                data_version=0,
            )
            .returning(inodes.c.id)
        ).scalar_one()
        conn.execute(volumes.update().where(volumes.c.id == volume_id).values(root_ino=root))


def downgrade() -> None:
    for table in ("requests", "xattrs", "slices", "dentries", "inodes"):
        op.drop_table(table)
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("root_ino")
