"""Names in directories: look up, make, link, unlink and list.

Each function is one operation inside the caller's transaction. Permissions are
the kernel's business (the client mounts with default_permissions); here the
kinds of inodes, the names and the link counts are kept right.
"""

import errno
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from storage_server.errors import FsError
from storage_server.filesystem import inodes
from storage_server.filesystem.inodes import Node
from storage_server.models import FILE_NAME_MAX_BYTES, Dentry, Inode, Volume, table_of

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


_DENTRIES = table_of(Dentry)
_INODES = table_of(Inode)
_NAMED = (_DENTRIES.c.parent_ino == bindparam("parent"), _DENTRIES.c.name == bindparam("name"))
_ENTRY = select(_DENTRIES.c.child_ino).where(*_NAMED)
_ANY_ENTRY = select(_DENTRIES.c.name).where(_DENTRIES.c.parent_ino == bindparam("parent")).limit(1)
_ADD_ENTRY = insert(_DENTRIES)
_REMOVE_ENTRY = delete(_DENTRIES).where(*_NAMED)
_ENTRIES = select(_DENTRIES.c.name, _DENTRIES.c.child_ino).where(
    _DENTRIES.c.parent_ino == bindparam("parent"),
    _DENTRIES.c.name.in_(bindparam("names", expanding=True)),
)
_LOOKUP = (
    select(*inodes.COLUMNS)
    .join(_DENTRIES, _DENTRIES.c.child_ino == _INODES.c.id)
    .where(*_NAMED, _INODES.c.volume_id == bindparam("volume_id"))
)


def entry(session: Session, parent: int, name: str) -> int | None:
    """The inode the name points at in the directory, if any."""
    child: int | None = (
        inodes.connection(session).execute(_ENTRY, {"parent": parent, "name": name}).scalar()
    )
    return child


def has_entries(session: Session, ino: int) -> bool:
    return inodes.connection(session).execute(_ANY_ENTRY, {"parent": ino}).first() is not None


def add_entry(session: Session, parent: int, name: str, child: int) -> None:
    inodes.connection(session).execute(
        _ADD_ENTRY, {"parent_ino": parent, "name": name, "child_ino": child}
    )


def remove_entry(session: Session, parent: int, name: str) -> None:
    inodes.connection(session).execute(_REMOVE_ENTRY, {"parent": parent, "name": name})


def _free_name(session: Session, volume_id: str, parent: int, name: str) -> Node:
    """Lock the directory `parent` for adding `name`, which must not exist."""
    check_name(name)
    directory = inodes.require_directory(inodes.lock(session, volume_id, parent)[0])
    if entry(session, parent, name) is not None:
        raise FsError(errno.EEXIST, f"{name!r} exists")
    return directory


@dataclass(frozen=True, slots=True)
class Added:
    """A new name: the inode it points at and its directory, as they are once
    the call is done, and the directory's (mtime_ns, ctime_ns) just before."""

    node: Node
    directory: Node
    before: tuple[int, int]


def times(directory: Node) -> tuple[int, int]:
    """What a client compares to know whether a directory's entries changed."""
    return directory.mtime_ns, directory.ctime_ns


def lookup(session: Session, volume_id: str, parent: int, name: str) -> Node:
    check_name(name)
    # One query on the hot path; a child shares its directory's volume.
    found = (
        inodes.connection(session)
        .execute(_LOOKUP, {"parent": parent, "name": name, "volume_id": volume_id})
        .first()
    )
    if found is not None:
        return Node.of(found)
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
) -> Added:
    """Make a node named `name` in `parent`."""
    kind = stat.S_IFMT(mode)
    if kind not in inodes.KINDS:
        raise FsError(errno.EINVAL, f"mode {mode:o} names no kind of file")
    if kind == stat.S_IFLNK:
        _check_target(target)
    if rdev > RDEV_MAX:
        raise FsError(errno.EINVAL, f"device number {rdev:#x} is out of range")
    directory = _free_name(session, volume_id, parent, name)
    before = times(directory)
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
    add_entry(session, parent, name, node.ino)
    inodes.touch_directory(
        session, directory, node.ctime_ns, nlink_delta=1 if inodes.is_dir(node) else 0
    )
    return Added(node, directory, before)


def link(session: Session, volume_id: str, ino: int, new_parent: int, new_name: str) -> Added:
    """Give the inode another name."""
    directory = _free_name(session, volume_id, new_parent, new_name)
    before = times(directory)
    (node,) = inodes.lock(session, volume_id, ino)
    if inodes.is_dir(node):
        raise FsError(errno.EPERM, "directories cannot have hard links")
    add_entry(session, new_parent, new_name, ino)
    now = inodes.now_ns()
    inodes.change(session, node, nlink=node.nlink + 1, ctime_ns=now)
    inodes.touch_directory(session, directory, now)
    return Added(node, directory, before)


@dataclass(frozen=True, slots=True)
class Unlinked:
    """A name removed: the inode it pointed at, its links left (0: deleted),
    and the directory (as it is once the call is done)."""

    ino: int
    nlink: int
    directory: Node


def unlink(
    session: Session, volume_id: str, parent: int, name: str, *, directory: bool
) -> Unlinked:
    """Remove a name (rmdir when `directory`)."""
    if not directory:
        (outcome,) = unlink_files(session, volume_id, [(parent, name)])
        if isinstance(outcome, FsError):
            raise outcome
        return outcome
    check_name(name)
    (parent_node,) = inodes.lock(session, volume_id, parent)
    inodes.require_directory(parent_node)
    child = entry(session, parent, name)
    if child is None:
        raise FsError(errno.ENOENT, f"{name!r} does not exist")
    (node,) = inodes.lock(session, volume_id, child)
    inodes.require_directory(node)
    if has_entries(session, child):
        raise FsError(errno.ENOTEMPTY, f"directory {name!r} is not empty")
    remove_entry(session, parent, name)
    now = inodes.now_ns()
    inodes.touch_directory(session, parent_node, now, nlink_delta=-1)
    inodes.drop_link(session, volume_id, node, now)
    return Unlinked(node.ino, node.nlink, parent_node)


def _entries(session: Session, parent: int, names: Iterable[str]) -> dict[str, int]:
    rows = inodes.connection(session).execute(
        _ENTRIES, {"parent": parent, "names": sorted(set(names))}
    )
    return {row.name: row.child_ino for row in rows}


def unlink_files(
    session: Session, volume_id: str, names: Sequence[tuple[int, str]]
) -> list[Unlinked | FsError]:
    """Remove names of files (not directories), given as (directory, name), as
    if one after the other: each succeeds or fails alone, changing nothing when
    it fails. A few statements per directory, not per name: deleting many
    files should cost about what deleting one does."""
    asked: dict[int, list[str]] = {}
    for parent, name in names:
        asked.setdefault(parent, []).append(name)
    directories = inodes.lock_found(session, volume_id, asked)
    if len(directories) < len(asked):
        inodes.require_volume(session, volume_id)  # else: ENOENT for those names
    entries: dict[tuple[int, str], int] = {}
    for parent, directory in directories.items():
        if inodes.is_dir(directory):
            found = _entries(session, parent, asked[parent])
            entries.update(((parent, name), child) for name, child in found.items())
    children = inodes.lock_found(session, volume_id, entries.values())
    outcomes: list[Unlinked | FsError] = []
    removed: list[tuple[int, str]] = []
    unlinked: dict[int, Node] = {}
    for parent, name in names:
        try:
            node = _file_to_unlink(directories, entries, children, parent, name)
        except FsError as exc:
            outcomes.append(exc)
            continue
        del entries[(parent, name)]
        removed.append((parent, name))
        node.nlink -= 1
        unlinked[node.ino] = node
        outcomes.append(Unlinked(node.ino, node.nlink, directories[parent]))
    if removed:
        now = inodes.now_ns()
        inodes.connection(session).execute(
            _REMOVE_ENTRY, [{"parent": parent, "name": name} for parent, name in removed]
        )
        for parent in dict.fromkeys(parent for parent, _ in removed):
            inodes.touch_directory(session, directories[parent], now)
        inodes.drop_links(session, volume_id, list(unlinked.values()), now)
    return outcomes


def _file_to_unlink(
    directories: dict[int, Node],
    entries: dict[tuple[int, str], int],
    children: dict[int, Node],
    parent: int,
    name: str,
) -> Node:
    check_name(name)
    directory = directories.get(parent)
    if directory is None:
        raise FsError(errno.ENOENT, f"directory {parent} does not exist")
    inodes.require_directory(directory)
    child = entries.get((parent, name))
    if child is None:
        raise FsError(errno.ENOENT, f"{name!r} does not exist")
    node = children[child]
    if inodes.is_dir(node):
        raise FsError(errno.EISDIR, f"{name!r} is a directory")
    return node


def read_dir(
    session: Session, volume_id: str, ino: int, after: str, limit: int
) -> tuple[Node, Sequence[Sequence[Any]], bool]:
    """The directory, up to `limit` of its entries named after `after`, in name
    order, and whether more follow. Each row holds the ATTR_FIELDS of the
    entry's inode, then its name."""
    # The directory before its entries: where statements do not share one
    # snapshot, a change between them leaves its times older than the entries
    # (a listing checked again too soon), never newer (one kept too long).
    directory = inodes.get(session, volume_id, ino)
    inodes.require_directory(directory)
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
    return directory, rows[:limit], len(rows) > limit


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
