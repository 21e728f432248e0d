"""rename(2) and renameat2(2) within one volume, with POSIX's replacement rules."""

import errno
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage_server.errors import FsError
from storage_server.filesystem import inodes
from storage_server.filesystem.inodes import Node
from storage_server.filesystem.namespace import check_name, entry, has_entries, remove_entry, times
from storage_server.models import Dentry

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


@dataclass(frozen=True, slots=True)
class Renamed:
    """The inode new_name pointed at before (0 when none), both directories as
    they are once the call is done, their times just before, and the inode that
    moved (None when nothing did)."""

    replaced: int
    old_dir: Node
    new_dir: Node
    old_before: tuple[int, int]
    new_before: tuple[int, int]
    moved: Node | None


def rename(
    session: Session,
    volume_id: str,
    *,
    parent: int,
    name: str,
    new_parent: int,
    new_name: str,
    flags: int,
) -> Renamed:
    """Move a name."""
    if flags not in (0, RENAME_NOREPLACE, RENAME_EXCHANGE):
        raise FsError(errno.EINVAL, f"unsupported rename flags {flags:#x}")
    check_name(name)
    check_name(new_name)
    # Parents before children, as every call locks.
    old_dir, new_dir = inodes.lock(session, volume_id, parent, new_parent)
    inodes.require_directory(old_dir)
    inodes.require_directory(new_dir)
    before = times(old_dir), times(new_dir)
    source_ino = entry(session, parent, name)
    if source_ino is None:
        raise FsError(errno.ENOENT, f"{name!r} does not exist")
    target_ino = entry(session, new_parent, new_name)
    if target_ino is None and flags == RENAME_EXCHANGE:
        raise FsError(errno.ENOENT, f"{new_name!r} does not exist")
    if target_ino is not None and flags == RENAME_NOREPLACE:
        raise FsError(errno.EEXIST, f"{new_name!r} exists")
    if source_ino == target_ino:
        # Two names of one inode (or one name twice): POSIX says do nothing.
        return Renamed(0, old_dir, new_dir, *before, moved=None)
    locked = inodes.lock(session, volume_id, source_ino, *([target_ino] if target_ino else []))
    source, target = locked[0], locked[1] if target_ino else None
    if parent != new_parent:
        _check_not_below_itself(session, source, new_parent)
        if target is not None and flags == RENAME_EXCHANGE:
            _check_not_below_itself(session, target, parent)

    now = inodes.now_ns()
    if target is not None and flags == RENAME_EXCHANGE:
        _point(session, parent, name, target.ino)
        _point(session, new_parent, new_name, source.ino)
        inodes.change(session, target, ctime_ns=now)
        _move_dir_link(new_dir, old_dir, target)
    else:
        if target is not None:
            _replace(session, volume_id, new_dir, new_name, source=source, target=target, now=now)
        session.execute(
            update(Dentry)
            .where(Dentry.parent_ino == parent, Dentry.name == name)
            .values(parent_ino=new_parent, name=new_name)
        )
    _move_dir_link(old_dir, new_dir, source)
    inodes.change(session, source, ctime_ns=now)
    # The directories' link counts changed in memory above; this writes them.
    inodes.touch_directory(session, old_dir, now)
    if new_dir is not old_dir:
        inodes.touch_directory(session, new_dir, now)
    return Renamed(target_ino or 0, old_dir, new_dir, *before, moved=source)


def _check_not_below_itself(session: Session, moving: Node, destination: int) -> None:
    """A directory cannot move into its own subtree (walking up from the destination)."""
    if not inodes.is_dir(moving):
        return
    ino: int | None = destination
    while ino is not None:
        if ino == moving.ino:
            raise FsError(errno.EINVAL, "cannot move a directory into itself")
        ino = session.scalar(select(Dentry.parent_ino).where(Dentry.child_ino == ino))


def _replace(
    session: Session,
    volume_id: str,
    directory: Node,
    name: str,
    *,
    source: Node,
    target: Node,
    now: int,
) -> None:
    """Remove the entry `name` of `directory` (pointing at `target`) for `source`."""
    if inodes.is_dir(source):
        if not inodes.is_dir(target):
            raise FsError(errno.ENOTDIR, "cannot replace a non-directory with a directory")
        if has_entries(session, target.ino):
            raise FsError(errno.ENOTEMPTY, "the directory to replace is not empty")
        directory.nlink -= 1
    elif inodes.is_dir(target):
        raise FsError(errno.EISDIR, "cannot replace a directory with a non-directory")
    remove_entry(session, directory.ino, name)
    inodes.drop_link(session, volume_id, target, now)


def _point(session: Session, parent: int, name: str, child: int) -> None:
    session.execute(
        update(Dentry)
        .where(Dentry.parent_ino == parent, Dentry.name == name)
        .values(child_ino=child)
    )


def _move_dir_link(old_dir: Node, new_dir: Node, moved: Node) -> None:
    """A directory's '..' now counts as a link of its new parent."""
    if inodes.is_dir(moved) and old_dir is not new_dir:
        old_dir.nlink -= 1
        new_dir.nlink += 1
