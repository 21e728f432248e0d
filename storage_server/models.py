"""The metadata tables. Their shape changes only through a migration."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_MAX_BYTES = 128
FILE_NAME_MAX_BYTES = 255
XATTR_NAME_MAX_BYTES = 255
BLOB_ID_CHARS = 32
REQUEST_ID_MAX_CHARS = 128
SESSION_ID_CHARS = 32
LOCK_CLIENT_MAX_CHARS = 255

# The kinds of rows in the volumes table.
VOLUME = "volume"
SNAPSHOT = "snapshot"

# SQLite makes only an INTEGER primary key an autoincrementing rowid.
InodeNumber = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """A model's table, for statements that need no ORM."""
    return Base.metadata.tables[model.__tablename__]


def _inode_ref(*, primary_key: bool = False, index: bool = False) -> Mapped[int]:
    """A column naming an inode; rows go when their inode does."""
    return mapped_column(
        BigInteger,
        ForeignKey("inodes.id", ondelete="CASCADE"),
        primary_key=primary_key,
        index=index,
    )


class Volume(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_BYTES), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # NULL only inside the transaction that creates the volume (the root inode
    # needs the volume row first). No foreign key, so that deleting the volume
    # cascades to its inodes without a cycle.
    root_ino: Mapped[int] = mapped_column(BigInteger, nullable=True)
    # VOLUME, or SNAPSHOT for the hidden copy of the files a snapshot keeps.
    kind: Mapped[str] = mapped_column(String(16), default=VOLUME, server_default=VOLUME)
    # What the volume's files were copied from at its creation: SNAPSHOT or
    # VOLUME and that object's id (no foreign key: the source may go first).
    source_kind: Mapped[str | None] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(36))


class Inode(Base):
    __tablename__ = "inodes"
    # AUTOINCREMENT: SQLite must not hand a freed inode number out again.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(InodeNumber, primary_key=True, autoincrement=True)
    volume_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volumes.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[int] = mapped_column(BigInteger)
    nlink: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    gid: Mapped[int] = mapped_column(BigInteger)
    rdev: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    allocated: Mapped[int] = mapped_column(BigInteger)
    atime_ns: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    ctime_ns: Mapped[int] = mapped_column(BigInteger)
    data_version: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[str | None] = mapped_column(Text)


class Dentry(Base):
    __tablename__ = "dentries"

    parent_ino: Mapped[int] = _inode_ref(primary_key=True)
    name: Mapped[str] = mapped_column(String(FILE_NAME_MAX_BYTES), primary_key=True)
    child_ino: Mapped[int] = _inode_ref(index=True)


class Slice(Base):
    """[offset, offset+length) of a file: bytes of a blob, or inline data.

    A file's slices never overlap; the gaps between them are holes."""

    __tablename__ = "slices"

    ino: Mapped[int] = _inode_ref(primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    length: Mapped[int] = mapped_column(BigInteger)
    # Indexed for the collector, which asks whether any slice names a blob.
    blob_id: Mapped[str | None] = mapped_column(String(BLOB_ID_CHARS), index=True)
    blob_offset: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)


class Xattr(Base):
    __tablename__ = "xattrs"

    ino: Mapped[int] = _inode_ref(primary_key=True)
    name: Mapped[str] = mapped_column(String(XATTR_NAME_MAX_BYTES), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class Request(Base):
    """The answer given to a mutating call, so that its retry gets the same one."""

    __tablename__ = "requests"

    volume_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_MAX_CHARS), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # The serialized response message, or else the errno the call failed with.
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    errno: Mapped[int | None] = mapped_column(Integer)


class Snapshot(Base):
    """A volume's files at one moment, kept in a hidden volume row of kind SNAPSHOT."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_BYTES), unique=True)
    # The hidden volume that holds the copy; its id is never shown, so no
    # Filesystem call can name it. Deleting it deletes the snapshot.
    volume_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volumes.id", ondelete="CASCADE"), unique=True
    )
    # Kept when that volume is deleted: CSI requires it of every snapshot.
    source_volume_id: Mapped[str] = mapped_column(String(36), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LockSession(Base):
    """A mount's claim to its advisory locks, valid while its lease is renewed."""

    __tablename__ = "lock_sessions"

    id: Mapped[str] = mapped_column(String(SESSION_ID_CHARS), primary_key=True)
    volume_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volumes.id", ondelete="CASCADE"), index=True
    )
    # Host and mount point, for people reading the table.
    client: Mapped[str] = mapped_column(String(LOCK_CLIENT_MAX_CHARS))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LapsedSession(Base):
    """A session whose lease ran out: its locks are gone, but for the server's
    orphan grace its mount may still come back for the files it had open
    after their last name went (fuse_client.orphans)."""

    __tablename__ = "lapsed_sessions"

    id: Mapped[str] = mapped_column(String(SESSION_ID_CHARS), primary_key=True)
    volume_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volumes.id", ondelete="CASCADE"), index=True
    )
    client: Mapped[str] = mapped_column(String(LOCK_CLIENT_MAX_CHARS))
    # When the lease ran out.
    lapsed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class FileLock(Base):
    """[range_start, range_end) of a file, locked by one owner of a session.

    An owner's locks of one kind on one file never overlap, so the range start
    completes the key. Rows go with their session or their inode."""

    __tablename__ = "file_locks"

    ino: Mapped[int] = _inode_ref(primary_key=True)
    # 1: an fcntl record lock; 2: a flock lock. The two kinds never conflict.
    kind: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(SESSION_ID_CHARS),
        ForeignKey("lock_sessions.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )
    # The kernel's 64-bit lock owner, stored as a signed BIGINT.
    owner: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    range_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    range_end: Mapped[int] = mapped_column(BigInteger)
    exclusive: Mapped[bool] = mapped_column(Boolean)
    pid: Mapped[int] = mapped_column(BigInteger)


class CollectorGate(Base):
    """One row, held shared by each copy of a volume's files (a snapshot, a
    restore, a clone) and exclusively by the blob collector while it decides:
    the slice rows a copy adds are invisible until it commits, so the
    collector must not decide about blobs meanwhile."""

    __tablename__ = "collector_gate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Raised by each collection, so that a copy whose snapshot of the database
    # is older than a collection fails to serialize and runs again.
    generation: Mapped[int] = mapped_column(BigInteger)
