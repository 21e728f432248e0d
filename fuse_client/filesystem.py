"""The file system logic of a mount, independent of FUSE: paths in, attributes,
bytes and OSErrors out. fuse_client.adapter puts it behind mfusepy.

Consistency is close-to-open, as NFS promises: open asks the server for fresh
attributes and drops cached data of a file whose data version changed; close
(flush) of a file opened for writing, and fsync, return once buffered writes
and this mount's earlier changes are on the server's stable storage. Between
those points attributes and entries are cached for `attr_ttl` seconds.
"""

import contextlib
import errno
import functools
import itertools
import logging
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fuse_client import orphans
from fuse_client.aliases import Aliases
from fuse_client.cache import NEGATIVE, DataCache, DirItem, MetaCache, Move, stamp_of
from fuse_client.listing import Lister, Pass
from fuse_client.locks import LockSession
from fuse_client.reader import BLOCK, MAX_WINDOW_BLOCKS, Reader
from fuse_client.remote import Remote
from fuse_client.writeback import FileWriter, Stored, Told
from proto.netvol.v1 import filesystem_pb2 as pb

log = logging.getLogger(__name__)

NAME_MAX = 255
RENAME_EXCHANGE = 2
# libfuse's names for files unlinked while open (see NetvolFS._hide).
# The names libfuse hides open files under: ".fuse_hidden", its node id and a
# counter, each as 8 hex digits, unique within the mount.
HIDDEN_NAME = re.compile(r"\.fuse_hidden[0-9a-f]{16}")
# chown's "leave as it is", before and after mfusepy's overflow fix-up.
UNCHANGED_ID = (-1, 0xFFFFFFFF)


@dataclass
class OpenFile:
    ino: int
    path: str
    version: int
    writable: bool
    told: Told = field(default_factory=Told)  # of its writer's failed stores
    next_offset: int = 0
    window: int = 1


@dataclass
class _OpenDir:
    ino: int
    parent: int
    listing: Pass | None = None


@dataclass
class _Space:
    """The volume's size and use as last seen, to refuse writes that cannot fit."""

    size: int = 0
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def stat_of(attr: pb.Attr) -> dict[str, Any]:
    return {
        "st_ino": attr.ino,
        "st_mode": attr.mode,
        "st_nlink": attr.nlink,
        "st_uid": attr.uid,
        "st_gid": attr.gid,
        "st_rdev": attr.rdev,
        "st_size": attr.size,
        "st_blocks": (attr.allocated + 511) // 512,
        "st_blksize": BLOCK,
        "st_atime": attr.atime_ns,
        "st_mtime": attr.mtime_ns,
        "st_ctime": attr.ctime_ns,
    }


def _encoded_length(name: str) -> int:
    """Names travel as UTF-8 (the server keeps them as text, on SQLite and
    PostgreSQL alike); bytes that are not UTF-8 get EILSEQ, not a mangled name."""
    try:
        return len(name.encode())
    except UnicodeEncodeError:
        raise OSError(errno.EILSEQ, "file names must be valid UTF-8") from None


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    if _encoded_length(name) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, "file name too long")
    return parent or "/", name


class NetvolFS:
    def __init__(
        self,
        remote: Remote,
        root_ino: int,
        attr_ttl: float,
        cache_bytes: int = 256 << 20,
        *,
        session: LockSession,
        invalidate_path: Callable[[str], None] = lambda path: None,
    ) -> None:
        self._remote = remote
        self.root_ino = root_ino
        self.meta = MetaCache(attr_ttl)
        self.data = DataCache(BLOCK, cache_bytes)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
        self._reader = Reader(remote, self.data)
        self._lister = Lister(remote, self.meta, self._executor, root_ino)
        self._writers: dict[int, FileWriter] = {}
        self._writers_lock = threading.Lock()
        self._open: dict[int, OpenFile] = {}
        self._dirs: dict[int, _OpenDir] = {}
        self._handles = itertools.count(1)
        self._space = _Space()
        self._orphans = orphans.Orphans(remote, root_ino, session)
        # libfuse's .fuse_hidden names (not paths: their directory may be renamed
        # before libfuse removes them) -> the inode and its orphan's number.
        self._hidden: dict[str, tuple[int, int]] = {}
        self._invalidate = invalidate_path
        self._aliases = Aliases(invalidate_path)
        # What the kernel's page cache holds per path: (inode, data version). Hard
        # links are separate kernel inodes in libfuse's path API, so each path
        # keeps its cached pages only while it has seen the current version.
        self._page_cache: OrderedDict[str, tuple[int, int]] = OrderedDict()

    # --- names ------------------------------------------------------------

    def _child(self, parent: int, name: str) -> int:
        if parent == self.root_ino and name == orphans.NAME:
            raise OSError(errno.ENOENT, name)
        _encoded_length(name)
        cached = self.meta.entry(parent, name)
        if cached is None and self._lister.kept(parent) is not None:
            cached = self.meta.entry(parent, name)
        if cached == NEGATIVE:
            raise OSError(errno.ENOENT, name)
        if cached is not None:
            return cached
        if self.meta.note_miss(parent):
            self._lister.fetch_all(parent)
            return self._child(parent, name)
        try:
            attr = self._remote.lookup(parent, name)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                self.meta.put_name(parent, name, NEGATIVE)
            raise
        self.meta.put_entry(parent, name, attr)
        return attr.ino

    def _hidden_at(self, path: str) -> tuple[int, int] | None:
        """The inode and orphan number of a path libfuse hid a file under."""
        return self._hidden.get(path.rpartition("/")[2]) if self._hidden else None

    def resolve(self, path: str) -> int:
        hidden = self._hidden_at(path)
        if hidden is not None:
            return hidden[0]
        ino = self.root_ino
        for name in path.split("/"):
            if name:
                ino = self._child(ino, name)
        return ino

    def _parent_of(self, path: str) -> tuple[int, str]:
        parent_path, name = _split(path)
        parent = self.resolve(parent_path)
        if parent == self.root_ino and name == orphans.NAME:
            raise OSError(errno.EPERM, f"{name} is reserved")
        return parent, name

    @contextlib.contextmanager
    def _taking(self, parent: int, name: str) -> Iterator[None]:
        """A call that makes `name` in `parent`: EEXIST means another node made it
        since our cache said it was free, so the cache asks the server next time."""
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                self.meta.forget_entry(parent, name)
            raise

    def _changed(self, parent: int) -> None:
        """Our own change to a directory that did not answer its new attributes."""
        self.meta.drop_attr(parent)

    # --- attributes -------------------------------------------------------

    def attr(self, ino: int) -> pb.Attr:
        attr = self.meta.attr(ino)
        if attr is None:
            attr = self._remote.getattr(ino)
            self.meta.put_attr(attr)
        writer = self._writers.get(ino)
        end = writer.dirty_end() if writer is not None else 0
        orphaned = self._orphans.links(ino)
        if end > attr.size or orphaned:
            # Buffered writes already make the file this long; orphan names are
            # links the server counts and the user removed.
            shown = pb.Attr()
            shown.CopyFrom(attr)
            shown.size = max(attr.size, end)
            shown.nlink = max(attr.nlink - orphaned, 0)
            return shown
        return attr

    def ino_of(self, fh: int) -> int:
        """The inode an open file handle is of."""
        return self._open[fh].ino

    def getattr(self, path: str | None, fh: int | None) -> dict[str, Any]:
        ino, through = self._target(path, fh)
        attr = self.attr(ino)
        if path:
            self._aliases.seen(ino, path, attr.nlink)
        shown = stat_of(attr)
        if self._hidden_at(through) is not None:
            # libfuse takes a link off what a hidden name shows, as if that name
            # were still counted; attr() no longer counts it.
            shown["st_nlink"] += 1
        return shown

    def _target(self, path: str | None, fh: int | None) -> tuple[int, str]:
        """The inode a call is about, and the path it came through."""
        if fh:
            handle = self._open[fh]
            return handle.ino, handle.path
        return self.resolve(path or "/"), path or "/"

    def _setattr(self, path: str | None, fh: int | None, **fields: Any) -> pb.Attr:
        ino, through = self._target(path, fh)
        # Writes buffered before the call come before it (a later store would
        # set the mtime that `cp -p` just gave the file).
        self._flush_ino(ino)
        attr = self._remote.setattr(pb.SetAttrRequest(ino=ino, **fields))
        self.meta.put_attr(attr)
        self._aliases.changed(ino, through)
        return attr

    def chmod(self, path: str | None, mode: int, fh: int | None) -> None:
        self._setattr(path, fh, mode=stat.S_IMODE(mode))

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None) -> None:
        fields = {}
        if uid not in UNCHANGED_ID:
            fields["uid"] = uid
        if gid not in UNCHANGED_ID:
            fields["gid"] = gid
        if fields:
            self._setattr(path, fh, **fields)

    def utimens(
        self,
        path: str | None,
        fh: int | None,
        *,
        atime: int | None,
        mtime: int | None,
        atime_now: bool,
        mtime_now: bool,
    ) -> None:
        """Times in ns; None leaves a time as it is."""
        fields: dict[str, Any] = {"atime_now": atime_now, "mtime_now": mtime_now}
        if atime is not None:
            fields["atime_ns"] = atime
        if mtime is not None:
            fields["mtime_ns"] = mtime
        self._setattr(path, fh, **fields)

    def truncate(self, path: str | None, length: int, fh: int | None) -> None:
        self._truncate(*self._target(path, fh), length)

    def _truncate(self, ino: int, through: str, length: int) -> pb.Attr:
        """Buffered writes first, then the new size; the caches follow as for a write."""
        self._flush_ino(ino)
        attr = self._remote.setattr(pb.SetAttrRequest(ino=ino, size=length))
        self._stored(Stored(attr, frozenset([through])))
        return attr

    # --- namespace --------------------------------------------------------

    def _make(
        self, path: str, mode: int, uid: int, gid: int, *, rdev: int = 0, target: str = ""
    ) -> pb.Attr:
        parent, name = self._parent_of(path)
        request = pb.MakeNodeRequest(
            parent=parent, name=name, mode=mode, uid=uid, gid=gid, rdev=rdev, target=target
        )
        with self._taking(parent, name):
            reply = self._remote.make_node(request)
        self._added(parent, name, reply)
        self.meta.put_xattr_names(reply.attr.ino, frozenset())  # new: none yet
        return reply.attr

    def _added(self, parent: int, name: str, reply: pb.EntryReply) -> None:
        self.meta.put_attr(reply.parent)
        # From a server too old to say, the listing is read again.
        before = stamp_of(reply.parent_before) if reply.HasField("parent_before") else None
        self.meta.put_added(parent, name, reply.attr, before, stamp_of(reply.parent))

    def mkdir(self, path: str, mode: int, uid: int, gid: int) -> None:
        self._make(path, stat.S_IFDIR | stat.S_IMODE(mode), uid, gid)

    def mknod(self, path: str, mode: int, uid: int, gid: int, *, rdev: int) -> None:
        self._make(path, mode, uid, gid, rdev=rdev)

    def symlink(self, path: str, target: str, uid: int, gid: int) -> None:
        self._make(path, stat.S_IFLNK | 0o777, uid, gid, target=target)

    def readlink(self, path: str) -> str:
        return self._remote.readlink(self.resolve(path))

    def link(self, target_path: str, new_path: str) -> None:
        ino = self.resolve(target_path)
        parent, name = self._parent_of(new_path)
        with self._taking(parent, name):
            reply = self._remote.link(ino, parent, name)
        attr = reply.attr
        self._added(parent, name, reply)
        self._aliases.seen(ino, target_path, attr.nlink)
        self._aliases.seen(ino, new_path, attr.nlink)
        self._aliases.changed(ino, new_path)

    def _is_open(self, ino: int) -> bool:
        return any(handle.ino == ino for handle in list(self._open.values()))

    def _hides(self, old: str, new: str, flags: int) -> bool:
        """Whether a rename is libfuse hiding a file open here (see _hide); a
        user's own rename to a name like that is a rename like any other."""
        if flags or not HIDDEN_NAME.fullmatch(_split(new)[1]):
            return False
        return self._is_open(self.resolve(old))

    def _hide(self, path: str, hidden: str) -> None:
        """libfuse hides a file that is unlinked or replaced while open by renaming
        it to .fuse_hidden*; we take the name away for real (the inode becomes an
        orphan) and keep answering for the hidden path on this node only."""
        parent, name = self._parent_of(path)
        ino = self._child(parent, name)
        self._hidden[_split(hidden)[1]] = ino, self._orphans.adopt(parent, name, ino)
        for handle in list(self._open.values()):
            if handle.path == path:
                handle.path = hidden  # libfuse moved the name's node there
        self._changed(parent)
        self.meta.put_name(parent, name, NEGATIVE)
        self.meta.drop_attr(ino)
        self._aliases.forget(ino, path)
        self._aliases.changed(ino)

    def _remove(self, path: str, directory: bool) -> None:
        hidden = self._hidden.pop(path.rpartition("/")[2], None)
        if hidden is not None:
            # libfuse removes the hidden name when the handles it kept closed.
            ino, number = hidden
            self._orphans.release(ino, number)
            if not self._orphans.links(ino):
                self.data.forget(ino)
            return
        parent, name = self._parent_of(path)
        known = None if directory else self._known_file(parent, name)
        if known is not None:
            # Answered now, applied in order (fuse_client.unlinks).
            self._remote.unlink_soon(
                parent, name, functools.partial(self._unlink_failed, parent, name)
            )
            ino, nlink = known.ino, known.nlink - 1
            self.meta.touch(parent, time.time_ns())
        else:
            reply = self._remote.unlink(parent, name, directory)
            self.meta.put_attr(reply.parent)
            ino, nlink = reply.ino, reply.nlink
        self.meta.put_name(parent, name, NEGATIVE)
        self.meta.drop_attr(ino)
        self._aliases.forget(ino, path)
        self._aliases.changed(ino)
        if nlink == 0:
            self.data.forget(ino)

    def _known_file(self, parent: int, name: str) -> pb.Attr | None:
        """The cached attributes of what `name` names, if it is known to be a
        file (anything but a directory)."""
        ino = self.meta.entry(parent, name)
        attr = self.meta.attr(ino) if ino else None
        return attr if attr is not None and not stat.S_ISDIR(attr.mode) else None

    def _unlink_failed(self, parent: int, name: str, failure: int) -> None:
        if failure != errno.ENOENT:
            self.meta.forget_entry(parent, name)

    def unlink(self, path: str) -> None:
        self._remove(path, directory=False)

    def rmdir(self, path: str) -> None:
        self._remove(path, directory=True)

    def rename(self, old: str, new: str, flags: int) -> None:
        if self._hides(old, new, flags):
            self._hide(old, new)
            return
        parent, name = self._parent_of(old)
        new_parent, new_name = self._parent_of(new)
        moved = self._child(parent, name)
        with self._taking(new_parent, new_name):
            reply = self._remote.rename(parent, name, new_parent, new_name, flags)
        after = stamp_of(reply.parent), stamp_of(reply.new_parent)
        before = None
        if reply.HasField("parent_before") and reply.HasField("new_parent_before"):
            before = stamp_of(reply.parent_before), stamp_of(reply.new_parent_before)
        if before == after:
            return  # two names of one inode: the server left both
        self.meta.put_attr(reply.parent)
        self.meta.put_attr(reply.new_parent)
        mode = None
        if reply.HasField("moved"):
            # What the server moved, which may not be what our cache took the
            # name for (another node may have replaced it within the bound).
            moved, mode = reply.moved.ino, reply.moved.mode
            self.meta.put_attr(reply.moved)
        else:
            self.meta.drop_attr(moved)  # its ctime changed
        if flags & RENAME_EXCHANGE:
            self.meta.put_name(parent, name, reply.replaced_ino)
            self.meta.put_name(new_parent, new_name, moved)
        else:
            move = Move(parent, name, new_parent, new_name, moved, mode, before, after)
            self.meta.put_moved(move)
        # The replaced inode changed ctime too.
        self.meta.drop_attr(reply.replaced_ino)
        self._aliases.forget(moved, old)
        self._aliases.forget(reply.replaced_ino, new)
        self._aliases.changed(moved)
        self._aliases.changed(reply.replaced_ino)

    def opendir(self, path: str) -> int:
        ino = self.resolve(path)
        parent = self.resolve(_split(path)[0]) if path != "/" else ino
        fh = next(self._handles)
        self._dirs[fh] = _OpenDir(ino, parent)
        return fh

    def readdir(self, fh: int, offset: int) -> list[DirItem]:
        """Entries of the open directory after the `offset`-th one, at most a page
        of them; the k-th returned is the (offset + k + 1)-th, so the kernel
        continues from the offset of the last one it took. Empty at the end.

        A read from offset 0 (opendir, rewinddir) starts a new pass over the
        listing: from the cache if it keeps it whole, else from the server a
        page at a time as the kernel asks; of a listing too large to keep, no
        more than a page is held."""
        handle = self._dirs[fh]
        items: list[DirItem] = []
        if offset == 0:
            items.append((".", handle.ino, stat.S_IFDIR))
        if offset <= 1:
            items.append(("..", handle.parent, stat.S_IFDIR))
        index = max(offset - 2, 0)  # of the first entry wanted, in the listing
        listing = handle.listing
        if listing is None or offset == 0 or index < listing.start:
            listing = handle.listing = self._lister.begin(handle.ino)
        return items + self._lister.entries(listing, index)

    def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    def statfs(self) -> dict[str, int]:
        reply = self._remote.statfs()
        with self._space.lock:
            self._space.size, self._space.used = reply.size_bytes, reply.used_bytes
        fragment = 4096
        free = max(reply.size_bytes - reply.used_bytes, 0) // fragment
        files = max(reply.inodes * 2, 1 << 20)
        return {
            "f_bsize": BLOCK,
            "f_frsize": fragment,
            "f_blocks": reply.size_bytes // fragment,
            "f_bfree": free,
            "f_bavail": free,
            "f_files": files,
            "f_ffree": files - reply.inodes,
            "f_favail": files - reply.inodes,
            "f_namemax": NAME_MAX,
        }

    # --- files ------------------------------------------------------------

    def _writer(self, ino: int) -> FileWriter:
        with self._writers_lock:
            writer = self._writers.get(ino)
            if writer is None:
                writer = FileWriter(ino, self._remote, self._executor, self._stored)
                self._writers[ino] = writer
            return writer

    def _stored(self, stored: Stored) -> None:
        """Our own write or truncate is stored: the caches follow its version."""
        attr = stored.attr
        known = self.data.advance(attr.ino, attr.data_version)
        # Answered after a later store: the caches follow a version that has it.
        late = known is not None and attr.data_version < known
        jumped = known is not None and attr.data_version > known + 1  # someone else wrote
        self.meta.put_attr(attr)
        # The kernel updated a path's pages as the data went through it, so a
        # path all of it came through is current (unless someone else wrote in
        # between); the other names are not.
        current = stored.through if len(stored.through) == 1 and not jumped else frozenset()
        self._aliases.changed(attr.ino, *current)
        if late:
            return
        for handle in list(self._open.values()):
            if handle.ino == attr.ino:
                handle.version = max(handle.version, attr.data_version)
                if handle.path in current:
                    self._note_page_cache(handle.path, attr)

    def _open_handle(self, path: str, attr: pb.Attr, writable: bool) -> tuple[int, bool]:
        """A handle for a freshly fetched `attr`; says whether kernel-cached pages still hold."""
        # Our own store may have been taken in since `attr` was fetched.
        version = max(attr.data_version, self.data.advance(attr.ino, attr.data_version) or 0)
        keep = self._page_cache.get(path) == (attr.ino, attr.data_version)
        self._note_page_cache(path, attr)
        fh = next(self._handles)
        with self._writers_lock:  # release() decides under it whether the writer goes
            writer = self._writers.get(attr.ino)
            told = writer.told() if writer is not None else Told()
            self._open[fh] = OpenFile(attr.ino, path, version, writable, told)
        return fh, keep

    def _note_page_cache(self, path: str, attr: pb.Attr) -> None:
        self._page_cache[path] = (attr.ino, attr.data_version)
        self._page_cache.move_to_end(path)
        if len(self._page_cache) > 100_000:
            self._page_cache.popitem(last=False)

    def open(self, path: str, flags: int) -> tuple[int, bool]:
        try:
            attr = self._open_attr(path, flags)
        except FileNotFoundError:
            if self._hidden_at(path) is not None:
                raise
            # The inode our cache took the name for is gone: another node
            # replaced or removed the name within the bound. Close-to-open
            # means the name as the server has it now.
            parent, name = self._parent_of(path)
            self.meta.forget_entry(parent, name)
            attr = self._open_attr(path, flags)
            self._invalidate(path)  # the kernel's attributes are of the old inode
        return self._open_handle(path, attr, writable=flags & os.O_ACCMODE != os.O_RDONLY)

    def _open_attr(self, path: str, flags: int) -> pb.Attr:
        """The server's attributes of the file `path` names, as an open needs them."""
        ino = self.resolve(path)
        if flags & os.O_TRUNC:
            # The kernel leaves O_TRUNC to us (atomic_o_trunc).
            return self._truncate(ino, path, 0)
        # Close-to-open: the server's attributes now, not the cached ones.
        attr = self._remote.getattr(ino)
        self.meta.put_attr(attr)
        return attr

    def create(self, path: str, mode: int, uid: int, gid: int) -> tuple[int, bool]:
        attr = self._make(path, stat.S_IFREG | stat.S_IMODE(mode), uid, gid)
        return self._open_handle(path, attr, writable=True)

    def read(self, fh: int, size: int, offset: int) -> bytes:
        handle = self._open[fh]
        self._flush_ino(handle.ino)
        attr = self.attr(handle.ino)
        # Grow the read-ahead window while reads follow each other.
        if offset == handle.next_offset:
            handle.window = min(handle.window * 2, MAX_WINDOW_BLOCKS)
        else:
            handle.window = 1
        handle.next_offset = offset + size
        return self._reader.read(
            handle.ino, handle.version, offset, size, file_size=attr.size, window=handle.window
        )

    def write(self, fh: int, data: bytes, offset: int) -> int:
        handle = self._open[fh]
        writer = self._writer(handle.ino)
        if self._would_overfill(len(data) + writer.dirty_bytes()):
            # Near the quota the server decides each write, so the error is this call's.
            writer.write_through(offset, data, handle.path, handle.told)
            self.statfs()
        else:
            writer.write(offset, data, handle.path, handle.told)
        return len(data)

    def _would_overfill(self, extra: int) -> bool:
        with self._space.lock:
            size, used = self._space.size, self._space.used
        if size == 0:
            self.statfs()
            with self._space.lock:
                size, used = self._space.size, self._space.used
        return used + extra > size * 0.95 or used + extra > size - 64 * BLOCK

    def _flush_ino(self, ino: int, told: Told | None = None) -> None:
        """Store what is buffered for `ino`; failures go to `told`'s file if not
        None, else they wait for the files that are to hear of them."""
        writer = self._writers.get(ino)
        if writer is not None:
            writer.flush(told)

    def flush(self, fh: int) -> None:
        handle = self._open[fh]
        self._flush_ino(handle.ino, handle.told)
        if handle.writable:
            self._remote.sync()

    def release(self, fh: int) -> None:
        # The kernel takes no error from release: close() had them from flush.
        handle = self._open.pop(fh)
        self._flush_ino(handle.ino)
        with self._writers_lock:
            writer = self._writers.get(handle.ino)
            if writer is not None and not writer.dirty and not self._is_open(handle.ino):
                del self._writers[handle.ino]

    def fsync(self, fh: int) -> None:
        handle = self._open[fh]
        self._flush_ino(handle.ino, handle.told)
        self._remote.sync()

    def fsyncdir(self) -> None:
        self._remote.sync()

    def flush_all(self) -> None:
        """Store what every file has buffered; a failure no open file is left to
        hear of is logged."""
        for writer in list(self._writers.values()):
            try:
                writer.flush(writer.told())
            except OSError as exc:
                log.error("writes to inode %d could not be stored: %s", writer.ino, exc)

    def sweep_orphans(self) -> None:
        self._orphans.sweep()

    def unmounted(self) -> None:
        """The kernel let go: reads still waiting for the server (read-ahead, or
        requests nobody will take the answer of) give up."""
        self._remote.stop_reads()

    def close(self) -> None:
        """After the unmount: store what is still buffered and apply deferred
        unlinks (as a hard mount would, waiting for the server), then drop
        read-ahead nobody awaits."""
        try:
            self.flush_all()
            self._remote.drain()
        finally:
            self.unmounted()
            self._reader.close()
            self._executor.shutdown(wait=True, cancel_futures=True)

    # --- extended attributes ----------------------------------------------

    def getxattr(self, path: str, name: str) -> bytes:
        ino = self.resolve(path)
        # The kernel asks for security.capability before every write; answering
        # absent names from the cached list saves a round trip per write.
        if name not in self._xattr_names(ino):
            raise OSError(errno.ENODATA, name)
        return self._remote.getxattr(ino, name)

    def _xattr_names(self, ino: int) -> frozenset[str]:
        names = self.meta.xattr_names(ino)
        if names is None:
            names = frozenset(self._remote.listxattr(ino))
            self.meta.put_xattr_names(ino, names)
        return names

    def listxattr(self, path: str) -> list[str]:
        return sorted(self._xattr_names(self.resolve(path)))

    def setxattr(self, path: str, name: str, value: bytes, flags: int) -> None:
        ino = self.resolve(path)
        try:
            self._remote.setxattr(ino, name, value, flags)
        finally:
            self.meta.drop_xattr_names(ino)
            self.meta.drop_attr(ino)

    def removexattr(self, path: str, name: str) -> None:
        ino = self.resolve(path)
        try:
            self._remote.removexattr(ino, name)
        finally:
            self.meta.drop_xattr_names(ino)
            self.meta.drop_attr(ino)
