"""Names in directories: look up, make, link, unlink and list.

Each function is one operation inside the caller's transaction. Permissions are
the kernel's business (the client mounts with default_permissions); here the
kinds of inodes, the names and the link counts are kept right.
"""

import errno
import stat
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage_server.errors import FsError
from storage_server.filesystem import inodes
from storage_server.models import FILE_NAME_MAX_BYTES, Dentry, Inode, Volume

# PATH_MAX less its terminating NUL.
SYMLINK_MAX_BYTES = 4095
# Stored as a signed 64-bit column; Linux device numbers are far smaller.
RDEV_MAX = 2**63 - 1
READDIR_DEFAULT = 1000
READDIR_MAX = 10000
# What a listing shows of each entry's inode, named as the wire's Attr fields.
# Plain columns, not Inode objects: building thousands of ORM instances
# costs more than the query.
ATTR_COLUMNS = (
    Inode.id.label("ino"),
    Inode.mode,
    Inode.nlink,
    Inode.uid,
    Inode.gid,
    Inode.rdev,
    Inode.size,
    Inode.allocated,
    Inode.atime_ns,
    Inode.mtime_ns,
    Inode.ctime_ns,
    Inode.data_version,
)
ATTR_FIELDS = tuple(column.key for column in ATTR_COLUMNS)


def check_name(name: str) -> str:
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise FsError(errno.EINVAL, f"invalid file name {name!r}")
    if len(name.encode()) > FILE_NAME_MAX_BYTES:
        raise FsError(errno.ENAMETOOLONG, f"file name is longer than {FILE_NAME_MAX_BYTES} bytes")
    return name


def entry(session: Session, parent: int, name: str) -> int | None:
    """The inode the name points at in the directory, if any."""
    return session.scalar(
        select(Dentry.child_ino).where(Dentry.parent_ino == parent, Dentry.name == name)
    )


def has_entries(session: Session, ino: int) -> bool:
    return session.scalar(select(Dentry.name).where(Dentry.parent_ino == ino).limit(1)) is not None


def remove_entry(session: Session, parent: int, name: str) -> None:
    session.execute(delete(Dentry).where(Dentry.parent_ino == parent, Dentry.name == name))


def _free_name(session: Session, volume_id: str, parent: int, name: str) -> Inode:
    """Lock the directory `parent` for adding `name`, which must not exist."""
    check_name(name)
    directory = inodes.require_directory(inodes.lock(session, volume_id, parent)[0])
    if entry(session, parent, name) is not None:
        raise FsError(errno.EEXIST, f"{name!r} exists")
    return directory


def lookup(session: Session, volume_id: str, parent: int, name: str) -> Inode:
    check_name(name)
    # One query on the hot path; a child shares its directory's volume.
    found = session.scalars(
        select(Inode)
        .join(Dentry, Dentry.child_ino == Inode.id)
        .where(Dentry.parent_ino == parent, Dentry.name == name, Inode.volume_id == volume_id)
    ).one_or_none()
    if found is not None:
        return found
    # Why not: no such volume or directory, not a directory, or no such name.
    inodes.require_directory(inodes.get(session, volume_id, parent))
    raise FsError(errno.ENOENT, f"{name!r} does not exist")


def _check_target(target: str) -> str:
    if not target:
        raise FsError(errno.ENOENT, "a symbolic link needs a target")
    if "\0" in target:
        raise FsError(errno.EINVAL, "a symbolic link target cannot hold NUL")
    if len(target.encode()) > SYMLINK_MAX_BYTES:
        raise FsError(errno.ENAMETOOLONG, f"target is longer than {SYMLINK_MAX_BYTES} bytes")
    return target


def make_node(
    session: Session,
    volume_id: str,
    parent: int,
    name: str,
    *,
    mode: int,
    uid: int,
    gid: int,
    rdev: int,
    target: str,
) -> tuple[Inode, Inode]:
    """Make a node named `name` in `parent`; return it and the directory."""
    kind = stat.S_IFMT(mode)
    if kind not in inodes.KINDS:
        raise FsError(errno.EINVAL, f"mode {mode:o} names no kind of file")
    if kind == stat.S_IFLNK:
        _check_target(target)
    if rdev > RDEV_MAX:
        raise FsError(errno.EINVAL, f"device number {rdev:#x} is out of range")
    directory = _free_name(session, volume_id, parent, name)
    permissions = 0o777 if kind == stat.S_IFLNK else stat.S_IMODE(mode)
    if directory.mode & stat.S_ISGID:
        # BSD group semantics of a setgid directory, as local file systems have:
        # new entries take its group, new directories its setgid bit.
        gid = directory.gid
        if kind == stat.S_IFDIR:
            permissions |= stat.S_ISGID
    node = inodes.create(
        session,
        volume_id,
        # Symbolic links carry no permissions of their own.
        kind | permissions,
        uid,
        gid,
        rdev=rdev if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0,
        target=target if kind == stat.S_IFLNK else None,
    )
    session.add(Dentry(parent_ino=parent, name=name, child_ino=node.id))
    if inodes.is_dir(node):
        directory.nlink += 1
    inodes.touch_directory(directory, node.ctime_ns)
    return node, directory


def link(
    session: Session, volume_id: str, ino: int, new_parent: int, new_name: str
) -> tuple[Inode, Inode]:
    """Give the inode another name; return it and the directory of that name."""
    directory = _free_name(session, volume_id, new_parent, new_name)
    (node,) = inodes.lock(session, volume_id, ino)
    if inodes.is_dir(node):
        raise FsError(errno.EPERM, "directories cannot have hard links")
    session.add(Dentry(parent_ino=new_parent, name=new_name, child_ino=ino))
    now = inodes.now_ns()
    node.nlink += 1
    node.ctime_ns = now
    inodes.touch_directory(directory, now)
    return node, directory


def unlink(
    session: Session, volume_id: str, parent: int, name: str, *, directory: bool
) -> tuple[Inode, Inode]:
    """Remove a name (rmdir when `directory`); return the inode it pointed at
    (with its link count; deleted when that is 0) and the directory."""
    check_name(name)
    (parent_node,) = inodes.lock(session, volume_id, parent)
    inodes.require_directory(parent_node)
    child = entry(session, parent, name)
    if child is None:
        raise FsError(errno.ENOENT, f"{name!r} does not exist")
    (node,) = inodes.lock(session, volume_id, child)
    if directory:
        inodes.require_directory(node)
        if has_entries(session, child):
            raise FsError(errno.ENOTEMPTY, f"directory {name!r} is not empty")
    elif inodes.is_dir(node):
        raise FsError(errno.EISDIR, f"{name!r} is a directory")
    remove_entry(session, parent, name)
    now = inodes.now_ns()
    if inodes.is_dir(node):
        parent_node.nlink -= 1
    inodes.touch_directory(parent_node, now)
    inodes.drop_link(session, volume_id, node, now)
    return node, parent_node


def read_dir(
    session: Session, volume_id: str, ino: int, after: str, limit: int
) -> tuple[Sequence[Sequence[Any]], bool]:
    """Up to `limit` entries named after `after`, in name order, and whether more
    follow. Each row holds the ATTR_FIELDS of the entry's inode, then its name."""
    inodes.require_directory(inodes.get(session, volume_id, ino))
    limit = min(limit or READDIR_DEFAULT, READDIR_MAX)
    # On the connection: Core rows, without the ORM's per-row processing.
    rows = (
        session.connection()
        .execute(
            select(*ATTR_COLUMNS, Dentry.name)
            .join(Inode, Inode.id == Dentry.child_ino)
            .where(Dentry.parent_ino == ino, Dentry.name > after)
            .order_by(Dentry.name)
            .limit(limit + 1)
        )
        .all()
    )
    return rows[:limit], len(rows) > limit


def read_link(session: Session, volume_id: str, ino: int) -> str:
    node = inodes.get(session, volume_id, ino)
    if not stat.S_ISLNK(node.mode) or node.target is None:
        raise FsError(errno.EINVAL, f"inode {ino} is not a symbolic link")
    return node.target


def stat_fs(session: Session, volume_id: str) -> tuple[Volume, int]:
    """The volume and how many inodes it has."""
    volume = inodes.require_volume(session, volume_id)
    count = session.scalar(select(func.count(Inode.id)).where(Inode.volume_id == volume_id))
    return volume, int(count or 0)
