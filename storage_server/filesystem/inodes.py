"""Inodes of a volume: fetch and lock them, make and drop them, and charge the
bytes they hold to the volume's quota.

Every function works inside the caller's transaction. Mutations lock the rows
they change (SELECT ... FOR UPDATE; SQLite's write transaction already holds
the database lock), always inodes before the volume row and inodes of one call
in ascending order, so concurrent calls on PostgreSQL queue instead of
deadlocking or losing counts.
"""

import errno
import stat
import time
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage_server.errors import FsError, NotFound
from storage_server.models import Inode, Volume

KINDS = frozenset(
    {
        stat.S_IFREG,
        stat.S_IFDIR,
        stat.S_IFLNK,
        stat.S_IFIFO,
        stat.S_IFSOCK,
        stat.S_IFCHR,
        stat.S_IFBLK,
    }
)
# Open to all, as a fresh volume of a networked file system usually is: pods
# run under many uids, and the owner of a volume can narrow it with chmod.
ROOT_MODE = stat.S_IFDIR | 0o777
_INODE_MAX = 2**63 - 1


def now_ns() -> int:
    return time.time_ns()


def require_volume(session: Session, volume_id: str) -> Volume:
    volume = session.get(Volume, volume_id)
    if volume is None:
        raise NotFound(f"volume id {volume_id!r} does not exist")
    return volume


def _missing(session: Session, volume_id: str) -> NoReturn:
    require_volume(session, volume_id)
    raise FsError(errno.ENOENT, "no such file or directory")


def _fetch(session: Session, volume_id: str, inos: Sequence[int], lock: bool) -> list[Inode]:
    wanted = sorted(set(inos))
    found: dict[int, Inode] = {}
    if wanted[-1] <= _INODE_MAX:
        query = (
            select(Inode)
            .where(Inode.id.in_(wanted), Inode.volume_id == volume_id)
            .order_by(Inode.id)
        )
        if lock:
            # populate_existing: what was read before the lock may be stale.
            query = query.with_for_update().execution_options(populate_existing=True)
        found = {node.id: node for node in session.scalars(query)}
    if len(found) != len(wanted):
        _missing(session, volume_id)
    return [found[ino] for ino in inos]


def get(session: Session, volume_id: str, ino: int) -> Inode:
    """The inode, which must belong to the volume (ENOENT otherwise)."""
    return _fetch(session, volume_id, [ino], lock=False)[0]


def lock(session: Session, volume_id: str, *inos: int) -> list[Inode]:
    """The inodes in argument order, locked for this transaction."""
    return _fetch(session, volume_id, inos, lock=True)


def is_dir(node: Inode) -> bool:
    return stat.S_ISDIR(node.mode)


def require_directory(node: Inode) -> Inode:
    if not is_dir(node):
        raise FsError(errno.ENOTDIR, f"inode {node.id} is not a directory")
    return node


def require_regular(node: Inode) -> Inode:
    if is_dir(node):
        raise FsError(errno.EISDIR, f"inode {node.id} is a directory")
    if not stat.S_ISREG(node.mode):
        raise FsError(errno.EINVAL, f"inode {node.id} is not a regular file")
    return node


def create(
    session: Session,
    volume_id: str,
    mode: int,
    uid: int,
    gid: int,
    *,
    rdev: int = 0,
    target: str | None = None,
) -> Inode:
    """A new inode with one link (two for a directory: its own '.')."""
    now = now_ns()
    node = Inode(
        volume_id=volume_id,
        mode=mode,
        nlink=2 if stat.S_ISDIR(mode) else 1,
        uid=uid,
        gid=gid,
        rdev=rdev,
        size=len(target.encode()) if target is not None else 0,
        allocated=0,
        atime_ns=now,
        mtime_ns=now,
        ctime_ns=now,
        data_version=0,
        target=target,
    )
    session.add(node)
    session.flush()
    return node


def make_root(session: Session, volume: Volume) -> None:
    """Give a new volume its root directory."""
    volume.root_ino = create(session, volume.id, ROOT_MODE, 0, 0).id


def touch_directory(node: Inode, now: int) -> None:
    """An entry of the directory was added, removed or changed."""
    node.mtime_ns = node.ctime_ns = now


def charge(session: Session, volume_id: str, delta: int) -> None:
    """Add `delta` bytes to the volume's use; ENOSPC if that would pass its size."""
    if delta == 0:
        return
    volume = session.scalars(
        select(Volume)
        .where(Volume.id == volume_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if delta > 0 and volume.used_bytes + delta > volume.size_bytes:
        raise FsError(
            errno.ENOSPC,
            f"volume {volume.name!r} would hold {volume.used_bytes + delta} bytes "
            f"of its {volume.size_bytes}",
        )
    volume.used_bytes += delta


def drop_link(session: Session, volume_id: str, node: Inode, now: int) -> None:
    """One name of the inode is gone; delete it (with its data) when none is left."""
    node.nlink = 0 if is_dir(node) else node.nlink - 1
    node.ctime_ns = now
    if node.nlink == 0:
        charge(session, volume_id, -node.allocated)
        # Its slices and xattrs go by ON DELETE CASCADE.
        session.delete(node)
