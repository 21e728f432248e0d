"""Inodes of a volume: fetch and lock them, make, change and drop them, and
charge the bytes they hold to the volume's quota.

Every function works inside the caller's transaction, on its connection with
plain SQL statements: a file system call is a handful of them, and the ORM's
unit of work would cost several times what the statements do. A Node is what
a call read; change() writes a change of it at once.

Mutations lock the rows they change (SELECT ... FOR UPDATE; SQLite's write
transaction already holds the database lock), always inodes before the volume
row and inodes of one call in ascending order, so concurrent calls on
PostgreSQL queue instead of deadlocking or losing counts.
"""

import errno
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy import update as update_statement
from sqlalchemy.orm import Session

from storage_server.errors import FsError, NotFound
from storage_server.models import Inode, Volume, table_of

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
_INODES = table_of(Inode)
_VOLUMES = table_of(Volume)


@dataclass(slots=True)
class Node:
    """An inode's row; the fields are in the order of COLUMNS."""

    ino: int
    volume_id: str
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    allocated: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    data_version: int
    target: str | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> "Node":
        """The Node of a row selected as COLUMNS."""
        return cls(*row)


COLUMNS = (_INODES.c.id.label("ino"), *(_INODES.c[name] for name in Node.__slots__[1:]))
_SELECT = (
    select(*COLUMNS)
    .where(
        _INODES.c.id.in_(bindparam("inos", expanding=True)),
        _INODES.c.volume_id == bindparam("volume_id"),
    )
    .order_by(_INODES.c.id)
)
_LOCK = _SELECT.with_for_update()
_INSERT = insert(_INODES).returning(_INODES.c.id)
# The columns set are the parameters' other keys.
_CHANGE = update_statement(_INODES).where(_INODES.c.id == bindparam("changed_ino"))
_DELETE = delete(_INODES).where(_INODES.c.id == bindparam("ino"))
_CHARGE = update_statement(_VOLUMES).where(_VOLUMES.c.id == bindparam("volume_id"))
_CHARGE_VALUES = {"used_bytes": _VOLUMES.c.used_bytes + bindparam("delta")}
_GROW = _CHARGE.where(_VOLUMES.c.used_bytes + bindparam("delta") <= _VOLUMES.c.size_bytes).values(
    _CHARGE_VALUES
)
_SHRINK = _CHARGE.values(_CHARGE_VALUES)


def connection(session: Session) -> Connection:
    """The transaction's connection, for statements that need no ORM."""
    return session.connection()


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


def _found(session: Session, volume_id: str, inos: Iterable[int], lock: bool) -> dict[int, Node]:
    wanted = sorted({ino for ino in inos if ino <= _INODE_MAX})
    if not wanted:
        return {}
    rows = connection(session).execute(
        _LOCK if lock else _SELECT, {"inos": wanted, "volume_id": volume_id}
    )
    return {row[0]: Node.of(row) for row in rows}


def _fetch(session: Session, volume_id: str, inos: Sequence[int], lock: bool) -> list[Node]:
    found = _found(session, volume_id, inos, lock)
    if len(found) != len(set(inos)):
        _missing(session, volume_id)
    return [found[ino] for ino in inos]


def get(session: Session, volume_id: str, ino: int) -> Node:
    """The inode, which must belong to the volume (ENOENT otherwise)."""
    return _fetch(session, volume_id, [ino], lock=False)[0]


def lock(session: Session, volume_id: str, *inos: int) -> list[Node]:
    """The inodes in argument order (one Node for an inode named twice), locked
    for this transaction."""
    return _fetch(session, volume_id, inos, lock=True)


def lock_found(session: Session, volume_id: str, inos: Iterable[int]) -> dict[int, Node]:
    """Those of the inodes that exist in the volume, by number, locked for
    this transaction."""
    return _found(session, volume_id, inos, lock=True)


def _ctime_after(node: Node, now: int) -> int:
    """A ctime for a change at `now` that never repeats or goes back, even within
    one clock tick or when the clock stepped back: clients take an inode whose
    (mtime, ctime) is unchanged as unchanged, a directory's entries included."""
    return max(now, node.ctime_ns + 1)


def change(session: Session, node: Node, **values: Any) -> None:
    """Change columns of the inode, in the row and in `node`; a new ctime_ns
    is moved past the old one."""
    if "ctime_ns" in values:
        values["ctime_ns"] = _ctime_after(node, values["ctime_ns"])
    for name, value in values.items():
        setattr(node, name, value)
    # One statement with bound parameters: compiled once per set of columns.
    connection(session).execute(_CHANGE, {"changed_ino": node.ino, **values})


def is_dir(node: Node) -> bool:
    return stat.S_ISDIR(node.mode)


def require_directory(node: Node) -> Node:
    if not is_dir(node):
        raise FsError(errno.ENOTDIR, f"inode {node.ino} is not a directory")
    return node


def require_regular(node: Node) -> Node:
    if is_dir(node):
        raise FsError(errno.EISDIR, f"inode {node.ino} is a directory")
    if not stat.S_ISREG(node.mode):
        raise FsError(errno.EINVAL, f"inode {node.ino} is not a regular file")
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
) -> Node:
    """A new inode with one link (two for a directory: its own '.')."""
    now = now_ns()
    node = Node(
        ino=0,
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
    values = {name: getattr(node, name) for name in Node.__slots__[1:]}
    node.ino = connection(session).execute(_INSERT, values).scalar_one()
    return node


def make_root(session: Session, volume: Volume) -> None:
    """Give a new volume (flushed already) its root directory."""
    volume.root_ino = create(session, volume.id, ROOT_MODE, 0, 0).ino


def touch_directory(session: Session, node: Node, now: int, nlink_delta: int = 0) -> None:
    """An entry of the directory was added, removed or changed (and a
    subdirectory's '..' came or went when `nlink_delta` says so)."""
    change(session, node, nlink=node.nlink + nlink_delta, mtime_ns=now, ctime_ns=now)


def charge(session: Session, volume_id: str, delta: int) -> None:
    """Add `delta` bytes to the volume's use; ENOSPC if that would pass its size."""
    if delta == 0:
        return
    statement = _GROW if delta > 0 else _SHRINK
    done = connection(session).execute(statement, {"volume_id": volume_id, "delta": delta})
    if done.rowcount == 0:
        volume = require_volume(session, volume_id)
        raise FsError(
            errno.ENOSPC,
            f"volume {volume.name!r} would hold {volume.used_bytes + delta} bytes "
            f"of its {volume.size_bytes}",
        )


def drop_link(session: Session, volume_id: str, node: Node, now: int) -> None:
    """One name of the inode is gone; delete it (with its data) when none is left."""
    node.nlink = 0 if is_dir(node) else node.nlink - 1
    drop_links(session, volume_id, [node], now)


def drop_links(session: Session, volume_id: str, nodes: Sequence[Node], now: int) -> None:
    """Names of the inodes are gone and each node's nlink counts those left:
    keep the count, or delete the inode (with its data) when none is left.
    A statement or two for the lot, however many inodes."""
    for node in nodes:
        node.ctime_ns = _ctime_after(node, now)
    kept = [
        {"changed_ino": n.ino, "nlink": n.nlink, "ctime_ns": n.ctime_ns} for n in nodes if n.nlink
    ]
    if kept:
        connection(session).execute(_CHANGE, kept)
    dropped = [node for node in nodes if not node.nlink]
    if dropped:
        charge(session, volume_id, -sum(node.allocated for node in dropped))
        # Their slices, xattrs and locks go by ON DELETE CASCADE.
        connection(session).execute(_DELETE, [{"ino": node.ino} for node in dropped])
