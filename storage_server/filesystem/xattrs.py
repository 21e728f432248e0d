"""Extended attributes, with Linux's limits and setxattr flags."""

import errno

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage_server.errors import FsError
from storage_server.filesystem import inodes
from storage_server.models import XATTR_NAME_MAX_BYTES, Xattr

XATTR_CREATE = 1
XATTR_REPLACE = 2
XATTR_SIZE_MAX = 64 * 1024


def _check_name(name: str) -> str:
    # Linux answers ERANGE for an empty or too long attribute name.
    if not name or len(name.encode()) > XATTR_NAME_MAX_BYTES or "\0" in name:
        raise FsError(errno.ERANGE, f"invalid attribute name {name[:300]!r}")
    return name


def _missing(name: str) -> FsError:
    return FsError(errno.ENODATA, f"no attribute {name!r}")


def get(session: Session, volume_id: str, ino: int, name: str) -> bytes:
    inodes.get(session, volume_id, ino)
    value = session.scalar(
        select(Xattr.value).where(Xattr.ino == ino, Xattr.name == _check_name(name))
    )
    if value is None:
        raise _missing(name)
    return value


def names(session: Session, volume_id: str, ino: int) -> list[str]:
    inodes.get(session, volume_id, ino)
    return list(session.scalars(select(Xattr.name).where(Xattr.ino == ino).order_by(Xattr.name)))


def put(session: Session, volume_id: str, ino: int, name: str, value: bytes, *, flags: int) -> None:
    if flags not in (0, XATTR_CREATE, XATTR_REPLACE):
        raise FsError(errno.EINVAL, f"unsupported setxattr flags {flags:#x}")
    _check_name(name)
    if len(value) > XATTR_SIZE_MAX:
        raise FsError(errno.E2BIG, f"attribute values are at most {XATTR_SIZE_MAX} bytes")
    (node,) = inodes.lock(session, volume_id, ino)
    existing = session.get(Xattr, (ino, name))
    if existing is not None and flags == XATTR_CREATE:
        raise FsError(errno.EEXIST, f"attribute {name!r} exists")
    if existing is None and flags == XATTR_REPLACE:
        raise _missing(name)
    if existing is None:
        session.add(Xattr(ino=ino, name=name, value=value))
    else:
        existing.value = value
    inodes.change(session, node, ctime_ns=inodes.now_ns())


def remove(session: Session, volume_id: str, ino: int, name: str) -> None:
    (node,) = inodes.lock(session, volume_id, ino)
    existing = session.get(Xattr, (ino, _check_name(name)))
    if existing is None:
        raise _missing(name)
    session.delete(existing)
    inodes.change(session, node, ctime_ns=inodes.now_ns())
