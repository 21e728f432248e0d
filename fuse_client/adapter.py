"""The FUSE face of a mount: mfusepy calls in, NetvolFS calls out.

Expected failures are OSErrors with an errno and pass through as that errno;
anything else is a bug, logged with its traceback and answered with EIO.
"""

import ctypes
import ctypes.util
import errno
import functools
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy

from fuse_client import readahead
from fuse_client.cache import DirItem
from fuse_client.filesystem import NetvolFS
from fuse_client.locks import Locks, Record

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# utimensat's special nanosecond values.
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
# fuse_common.h: left on, libfuse would expect us to clear setuid/setgid on
# write and chown; off, the kernel does it as for local file systems.
FUSE_CAP_HANDLE_KILLPRIV = 1 << 20
# READDIRPLUS entries carry attributes, which libfuse's path API would get
# with a getattr per entry; we give none, so plain READDIR, which fits five
# times the entries in a reply, is all the kernel should ask for.
FUSE_CAP_READDIRPLUS = 1 << 13
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
# Sequential reads reach the mount in requests of this size (fuse_client.readahead).
READ_AHEAD = 1 << 20
# /proc/<pid>/status: the signals pending for a thread and for its process.
_PENDING = ("SigPnd:", "ShdPnd:")
_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)
# /proc/<pid>/stat, counted from the field after the command's name: the
# task's flags and the exit code wait() will see (set before its files close).
_STAT_FLAGS = 6
_STAT_EXIT_CODE = 49
_PF_EXITING = 0x4
# How often the mount looks whether the kernel let go of it.
SESSION_POLL_SECONDS = 0.1

# The same libfuse3 that mfusepy loaded (dlopen returns the loaded library).
_libfuse = ctypes.CDLL(ctypes.util.find_library("fuse3"))
_libfuse.fuse_get_context.restype = ctypes.POINTER(ctypes.c_void_p)
_libfuse.fuse_invalidate_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_libfuse.fuse_interrupted.restype = ctypes.c_int
_libfuse.fuse_get_session.argtypes = [ctypes.c_void_p]
_libfuse.fuse_get_session.restype = ctypes.c_void_p
_libfuse.fuse_session_exited.argtypes = [ctypes.c_void_p]
_libfuse.fuse_session_exited.restype = ctypes.c_int


# Whether this thread serves a FUSE request that a kill may end: libfuse's
# request context, which killed() reads, exists only while one is served.
_serving = threading.local()


def interrupted() -> bool:
    """Whether the process behind the request this thread serves got a signal."""
    return bool(_libfuse.fuse_interrupted())


def killed() -> bool:
    """Whether the process behind the request this thread serves is being
    killed. Only that ends a wait for an unreachable server, as on an NFS hard
    mount: any other signal would hand EINTR to calls (stat, open) that never
    fail that way on a local disk. The kernel turns every fatal signal into a
    pending SIGKILL, which /proc shows; a process past that, closing its files
    on the way out, shows the signal in its exit code. The kernel's interrupt
    is no sign: it sends none for a direct read, nor for that last close after
    a SIGTERM. Asked only once a wait is long (Remote), so /proc is cheap."""
    if not getattr(_serving, "killable", False):
        return False
    pid = mfusepy.fuse_get_context()[2]
    try:
        return _sigkill_pending(pid) or _dying_of_a_signal(pid)
    except FileNotFoundError:
        return True  # gone already


def _sigkill_pending(pid: int) -> bool:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return any(
            line.startswith(_PENDING) and int(line.split()[1], 16) & _SIGKILL_BIT for line in status
        )


def _dying_of_a_signal(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        fields = stat.read().rpartition(")")[2].split()
    exiting = int(fields[_STAT_FLAGS]) & _PF_EXITING
    return bool(exiting and int(fields[_STAT_EXIT_CODE]) & 0x7F)


def _guard(method: F, killable: bool) -> F:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _serving.killable = killable
        try:
            return method(*args, **kwargs)
        except OSError:
            raise
        except Exception as exc:
            log.exception("%s failed", method.__name__)
            raise mfusepy.FuseOSError(errno.EIO) from exc
        finally:
            _serving.killable = False

    return guarded  # type: ignore[return-value]


def _op(method: F) -> F:
    """An operation that stops waiting for the server when its process is killed."""
    return _guard(method, killable=True)


def _closing_op(method: F) -> F:
    """An operation the kernel sends in the background of a close (release,
    with its flock release): its work is done however the process ends."""
    return _guard(method, killable=False)


def _caller() -> tuple[int, int]:
    uid, gid, _pid = mfusepy.fuse_get_context()
    return uid, gid


class Operations(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    fs: NetvolFS  # set once the file system is built with our invalidate_path
    locks: Locks  # set with fs

    def __init__(self, mountpoint: str, attr_ttl: float) -> None:
        self._mountpoint = mountpoint
        self._ttl = attr_ttl
        self._fuse: int | None = None
        self._destroyed = threading.Event()

    def invalidate_path(self, path: str) -> None:
        """Make the kernel drop what it caches for `path` (attributes and pages)."""
        if self._fuse is not None:
            _libfuse.fuse_invalidate_path(self._fuse, path.encode("utf-8", "surrogateescape"))

    def init_with_config(self, conn_info: Any, config: Any) -> None:
        # fuse_context's first field is the struct fuse this mount runs on.
        self._fuse = _libfuse.fuse_get_context().contents.value
        session = _libfuse.fuse_get_session(self._fuse)
        threading.Thread(
            target=self._watch_session, args=(session,), name="session-watch", daemon=True
        ).start()
        if conn_info is not None:
            conn_info.want &= ~(
                FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO
            )
            # 1 MiB writes instead of 128 KiB: fewer calls into Python per byte.
            conn_info.max_write = 1 << 20
            conn_info.max_readahead = READ_AHEAD
            conn_info.time_gran = 1
            readahead.widen(self._mountpoint, READ_AHEAD)
        if config is not None:
            config.entry_timeout = self._ttl
            config.attr_timeout = self._ttl
            config.negative_timeout = self._ttl
            config.use_ino = 1
            # Calls on open files come with their handle and no path, so they
            # work after the file's name is gone.
            config.nullpath_ok = 1

    def _watch_session(self, session: int) -> None:
        """Tell the file system as soon as the kernel let go. libfuse calls
        destroy only once every request under way is answered; a read-ahead
        request waiting for a slow or absent server would hold the exit back
        for as long as the server stays away."""
        while not self._destroyed.wait(SESSION_POLL_SECONDS):
            if _libfuse.fuse_session_exited(session):
                self.fs.unmounted()
                return

    def destroy(self, path: str) -> None:
        self._destroyed.set()
        self.fs.close()

    @_op
    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        return self.fs.getattr(path, fh.fh if fh is not None else None)

    @_op
    def opendir(self, path: str) -> int:
        return self.fs.opendir(path)

    @_op
    def readdir_with_offset(self, path: str | None, offset: int, fh: int) -> list[DirItem]:
        """Entries after the `offset`-th (see NetvolFS.readdir); only our
        Fuse.readdir_fuse_3 calls it, which gives them their offsets."""
        return self.fs.readdir(fh, offset)

    @_closing_op
    def releasedir(self, path: str | None, fh: int) -> None:
        self.fs.releasedir(fh)

    @_op
    def mkdir(self, path: str, mode: int) -> None:
        self.fs.mkdir(path, mode, *_caller())

    @_op
    def mknod(self, path: str, mode: int, dev: int) -> None:
        self.fs.mknod(path, mode, *_caller(), rdev=dev)

    @_op
    def symlink(self, target: str, source: str) -> None:
        # mfusepy's names: `target` is the new link's path, `source` its content.
        self.fs.symlink(target, source, *_caller())

    @_op
    def link(self, target: str, source: str) -> None:
        # `target` is the new name, `source` the existing file.
        self.fs.link(source, target)

    @_op
    def readlink(self, path: str) -> str:
        return self.fs.readlink(path)

    @_op
    def unlink(self, path: str) -> None:
        self.fs.unlink(path)

    @_op
    def rmdir(self, path: str) -> None:
        self.fs.rmdir(path)

    @_op
    def rename(self, old: str, new: str, flags: int = 0) -> None:
        self.fs.rename(old, new, flags)

    @_op
    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> None:
        self.fs.chmod(path, mode, fh)

    @_op
    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> None:
        self.fs.chown(path, uid, gid, fh)

    @_op
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        self.fs.truncate(path, length, fh)

    @_op
    def utimens(
        self,
        path: str | None,
        atime: tuple[int, int],
        mtime: tuple[int, int],
        fh: int | None = None,
    ) -> None:
        """Times as raw (seconds, nanoseconds) pairs, so UTIME_NOW/OMIT survive."""

        def value(time: tuple[int, int]) -> int | None:
            return None if time[1] in (UTIME_NOW, UTIME_OMIT) else time[0] * 10**9 + time[1]

        self.fs.utimens(
            path,
            fh,
            atime=value(atime),
            mtime=value(mtime),
            atime_now=atime[1] == UTIME_NOW,
            mtime_now=mtime[1] == UTIME_NOW,
        )

    @_op
    def open(self, path: str, fi: Any) -> int:
        fi.fh, keep = self.fs.open(path, fi.flags)
        fi.keep_cache = int(keep)
        if not keep:
            # Close-to-open: without keep_cache the kernel drops its pages, but it
            # would keep the size it caches (and clip reads to it) until it expires.
            self.invalidate_path(path)
        return 0

    @_op
    def create(self, path: str, mode: int, fi: Any) -> int:
        fi.fh, keep = self.fs.create(path, mode, *_caller())
        fi.keep_cache = int(keep)
        return 0

    @_op
    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        return self.fs.read(fi.fh, size, offset)

    @_op
    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        return self.fs.write(fi.fh, data, offset)

    @_op
    def flush(self, path: str, fi: Any) -> None:
        self.fs.flush(fi.fh)

    @_op
    def fsync(self, path: str, datasync: int, fi: Any) -> None:
        self.fs.fsync(fi.fh)

    @_op
    def fsyncdir(self, path: str, datasync: int, fi: Any) -> None:
        self.fs.fsyncdir()

    @_closing_op
    def release(self, path: str, fi: Any) -> None:
        self.fs.release(fi.fh)

    @_op
    def statfs(self, path: str) -> dict[str, int]:
        return self.fs.statfs()

    @_op
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        return self.fs.getxattr(path, name)

    @_op
    def listxattr(self, path: str) -> list[str]:
        return self.fs.listxattr(path)

    @_op
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> None:
        self.fs.setxattr(path, name, value, options)

    @_op
    def removexattr(self, path: str, name: str) -> None:
        self.fs.removexattr(path, name)

    @_op
    def lock(self, fh: int, owner: int, cmd: int, flock: Any) -> None:
        """fcntl record locks; F_GETLK's answer goes back into `flock`."""
        asked = Record(flock.l_type, flock.l_start, flock.l_len, flock.l_pid)
        found = self.locks.fcntl(fh, owner, cmd, asked)
        if found is not None:
            flock.l_type, flock.l_start, flock.l_len = found.type, found.start, found.length
            flock.l_pid = found.pid

    @_op
    def flock(self, fh: int, owner: int, operation: int) -> None:
        self.locks.flock(fh, owner, operation)

    @_closing_op
    def release_flock(self, fh: int, owner: int) -> None:
        self.locks.release_flock(fh, owner)


def _fh(fip: Any) -> int | None:
    return int(fip.contents.fh) if fip else None


class Fuse(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy's FUSE, passing on what it drops: rename flags, raw times, and the
    open file of chmod, chown, truncate and utimens (needed once a name is gone)."""

    def _path(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        self.operations.rename(self._path(old), self._path(new), flags)
        return 0

    def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
        self.operations.chmod(self._path(path), mode, _fh(fip))
        return 0

    def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
        # uid_t/gid_t -1 ("leave as it is") arrives as 2**32 - 1.
        self.operations.chown(self._path(path), uid, gid, _fh(fip))
        return 0

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        self.operations.truncate(self._path(path), length, _fh(fip))
        return 0

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        if buf:
            times = buf.contents
            atime = (times.actime.tv_sec, times.actime.tv_nsec)
            mtime = (times.modtime.tv_sec, times.modtime.tv_nsec)
        else:
            atime = mtime = (0, UTIME_NOW)
        self.operations.utimens(self._path(path), atime, mtime, _fh(fip))
        return 0

    def readdir_fuse_3(  # noqa: PLR0917 (libfuse's callback)
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
    ) -> int:
        """Entries with offsets, so that libfuse puts them straight into the
        kernel's buffer and the kernel asks again from where that filled up
        (mfusepy's readdir would have libfuse copy the whole listing first).
        One stat for all, of which the kernel takes the inode and the type."""
        items = self.operations.readdir_with_offset(self._path(path), offset, fip.contents.fh)
        st = mfusepy.c_stat()
        encoding, errors = self.encoding, self.errors
        for next_offset, (name, ino, mode) in enumerate(items, offset + 1):
            st.st_ino, st.st_mode = ino, mode
            if filler(buf, name.encode(encoding, errors), st, next_offset, 0):
                break  # the buffer is full
        return 0

    # Locks need the kernel's lock owner, which mfusepy does not pass on; and
    # with nullpath_ok its flock would fail on the missing path.
    def lock(self, path: bytes | None, fip: Any, cmd: int, lock: Any) -> int:
        info = fip.contents
        self.operations.lock(info.fh, info.lock_owner, cmd, lock.contents)
        return 0

    def flock(self, path: bytes | None, fip: Any, operation: int) -> int:
        info = fip.contents
        self.operations.flock(info.fh, info.lock_owner, operation)
        return 0

    def release(self, path: bytes | None, fip: Any) -> int:
        # libfuse leaves it to the file system to drop the flock of a file's last close.
        info = fip.contents
        try:
            if info.flock_release:
                self.operations.release_flock(info.fh, info.lock_owner)
        finally:
            released: int = super().release(path, fip)
        return released
