"""Files unlinked while open stay usable through their open handles, as POSIX
requires. The name goes at once; the inode moves to a hidden directory at the
volume's root and is removed there when its last local handle closes (libfuse
tells us, through its .fuse_hidden rename and unlink: see NetvolFS._hide).

A mount that dies with orphans open leaves them behind; the next mount removes
those older than ORPHAN_MAX_AGE_NS.
"""

import errno
import itertools
import logging
import stat
import threading
import time
import uuid

from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

log = logging.getLogger(__name__)

NAME = ".netvol-orphans"
ORPHAN_MAX_AGE_NS = 24 * 3600 * 10**9


class Orphans:
    def __init__(self, remote: Remote, root_ino: int) -> None:
        self._remote = remote
        self._root = root_ino
        self._mount_id = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._dir: int | None = None
        self._count = itertools.count(1)
        # Each name taken from an open inode is an orphan of its own: two hard
        # links unlinked while open are two, released one after the other.
        self._names: dict[int, set[str]] = {}

    def _dir_ino(self) -> int:
        with self._lock:
            if self._dir is None:
                try:
                    self._dir = self._remote.lookup(self._root, NAME).ino
                except FileNotFoundError:
                    request = pb.MakeNodeRequest(
                        parent=self._root, name=NAME, mode=stat.S_IFDIR | 0o700
                    )
                    try:
                        self._dir = self._remote.make_node(request).attr.ino
                    except FileExistsError:  # another node made it first
                        self._dir = self._remote.lookup(self._root, NAME).ino
            return self._dir

    def adopt(self, parent: int, name: str, ino: int) -> str:
        """Take the name away from an open inode, keeping the inode under an
        orphan name, which is returned."""
        orphan = f"{ino}-{self._mount_id}-{next(self._count)}"
        self._remote.rename(parent, name, self._dir_ino(), orphan, 0)
        with self._lock:
            self._names.setdefault(ino, set()).add(orphan)
        return orphan

    def links(self, ino: int) -> int:
        """How many of the inode's links are orphan names (the server counts them)."""
        with self._lock:
            return len(self._names.get(ino, ()))

    def release(self, ino: int, orphan: str) -> None:
        """The handles that kept the name closed: remove the orphan name."""
        with self._lock:
            names = self._names.get(ino, set())
            names.discard(orphan)
            if not names:
                self._names.pop(ino, None)
        self._remote.unlink(self._dir_ino(), orphan, directory=False)

    def sweep(self) -> None:
        """Remove orphans that a dead mount left behind long ago."""
        try:
            directory = self._remote.lookup(self._root, NAME).ino
        except FileNotFoundError:
            return
        cutoff = time.time_ns() - ORPHAN_MAX_AGE_NS
        for entry in self._remote.readdir(directory):
            if entry.attr.ctime_ns < cutoff:
                try:
                    self._remote.unlink(directory, entry.name, directory=False)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        log.warning("cannot remove stale orphan %s: %s", entry.name, exc)
