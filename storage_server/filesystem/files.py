"""An inode's attributes and data: SetAttr (chmod, chown, utimens, truncate)
and the commit of a Write, each inside the caller's transaction."""

import errno
import stat
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage_server.errors import FsError
from storage_server.filesystem import blockmap, inodes
from storage_server.filesystem.blockmap import MAX_FILE_SIZE, Extent
from storage_server.filesystem.inodes import Node


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


def _data_changed(now: int, node: Node) -> dict[str, int]:
    return {"mtime_ns": now, "ctime_ns": now, "data_version": node.data_version + 1}


def _resize(session: Session, volume_id: str, node: Node, size: int, now: int) -> dict[str, int]:
    """The columns a truncate or extension to `size` changes."""
    inodes.require_regular(node)
    if size > MAX_FILE_SIZE:
        raise FsError(errno.EFBIG, f"size {size} is beyond the largest file")
    allocated = node.allocated
    if size < node.size:
        freed = blockmap.truncate(session, node.ino, size)
        inodes.charge(session, volume_id, -freed)
        allocated -= freed
    # Growing leaves a hole, which holds no bytes.
    return {"size": size, "allocated": allocated, **_data_changed(now, node)}


def set_attr(session: Session, volume_id: str, ino: int, changes: AttrChanges) -> Node:
    (node,) = inodes.lock(session, volume_id, ino)
    now = inodes.now_ns()
    values: dict[str, int] = {}
    if changes.size is not None:
        values.update(_resize(session, volume_id, node, changes.size, now))
    if changes.mode is not None:
        values["mode"] = stat.S_IFMT(node.mode) | stat.S_IMODE(changes.mode)
    if changes.uid is not None:
        values["uid"] = changes.uid
    if changes.gid is not None:
        values["gid"] = changes.gid
    if changes.atime_now:
        values["atime_ns"] = now
    elif changes.atime_ns is not None:
        values["atime_ns"] = changes.atime_ns
    if changes.mtime_now:
        values["mtime_ns"] = now
    elif changes.mtime_ns is not None:
        values["mtime_ns"] = changes.mtime_ns
    values["ctime_ns"] = now
    inodes.change(session, node, **values)
    return node


def write(session: Session, volume_id: str, ino: int, extents: list[Extent]) -> Node:
    """Point the file at a Write stream's extents, later ones over earlier ones."""
    (node,) = inodes.lock(session, volume_id, ino)
    inodes.require_regular(node)
    disjoint = blockmap.flatten(extents)
    if not disjoint:
        return node
    added = blockmap.write(session, ino, disjoint)
    inodes.charge(session, volume_id, added)
    inodes.change(
        session,
        node,
        allocated=node.allocated + added,
        size=max(node.size, disjoint[-1].end),
        **_data_changed(inodes.now_ns(), node),
    )
    return node


def readable(session: Session, volume_id: str, ino: int) -> Node:
    return inodes.require_regular(inodes.get(session, volume_id, ino))
