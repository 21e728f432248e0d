"""An inode's attributes and data: SetAttr (chmod, chown, utimens, truncate)
and the commit of a Write, each inside the caller's transaction."""

import errno
import stat
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage_server.errors import FsError
from storage_server.filesystem import blockmap, inodes
from storage_server.filesystem.blockmap import MAX_FILE_SIZE, Extent
from storage_server.models import Inode


@dataclass(frozen=True)
class AttrChanges:
    """What a SetAttr changes; None leaves a value as it is."""

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    atime_ns: int | None = None
    mtime_ns: int | None = None
    atime_now: bool = False
    mtime_now: bool = False


def _data_changed(node: Inode, now: int) -> None:
    node.mtime_ns = node.ctime_ns = now
    node.data_version += 1


def _resize(session: Session, volume_id: str, node: Inode, size: int, now: int) -> None:
    inodes.require_regular(node)
    if size > MAX_FILE_SIZE:
        raise FsError(errno.EFBIG, f"size {size} is beyond the largest file")
    if size < node.size:
        freed = blockmap.truncate(session, node.id, size)
        inodes.charge(session, volume_id, -freed)
        node.allocated -= freed
    # Growing leaves a hole, which holds no bytes.
    node.size = size
    _data_changed(node, now)


def set_attr(session: Session, volume_id: str, ino: int, changes: AttrChanges) -> Inode:
    (node,) = inodes.lock(session, volume_id, ino)
    now = inodes.now_ns()
    if changes.size is not None:
        _resize(session, volume_id, node, changes.size, now)
    if changes.mode is not None:
        node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(changes.mode)
    if changes.uid is not None:
        node.uid = changes.uid
    if changes.gid is not None:
        node.gid = changes.gid
    if changes.atime_now:
        node.atime_ns = now
    elif changes.atime_ns is not None:
        node.atime_ns = changes.atime_ns
    if changes.mtime_now:
        node.mtime_ns = now
    elif changes.mtime_ns is not None:
        node.mtime_ns = changes.mtime_ns
    node.ctime_ns = now
    return node


def write(session: Session, volume_id: str, ino: int, extents: list[Extent]) -> Inode:
    """Point the file at a Write stream's extents, later ones over earlier ones."""
    (node,) = inodes.lock(session, volume_id, ino)
    inodes.require_regular(node)
    disjoint = blockmap.flatten(extents)
    if not disjoint:
        return node
    added = blockmap.write(session, ino, disjoint)
    inodes.charge(session, volume_id, added)
    node.allocated += added
    node.size = max(node.size, disjoint[-1].end)
    _data_changed(node, inodes.now_ns())
    return node


def readable(session: Session, volume_id: str, ino: int) -> Inode:
    return inodes.require_regular(inodes.get(session, volume_id, ino))
