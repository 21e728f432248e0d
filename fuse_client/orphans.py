"""Files unlinked while open stay usable through their open handles, as POSIX
requires. The name goes at once; the inode moves to a hidden directory at the
volume's root and is removed there when its last local handle closes (libfuse
tells us, through its .fuse_hidden rename and unlink: see NetvolFS._hide).

A mount that dies with orphans open leaves them behind; the next mount removes
those older than ORPHAN_MAX_AGE_NS.
"""

import errno
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
        self._names: dict[int, str] = {}

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

    def adopt(self, parent: int, name: str, ino: int) -> None:
        """Take the name away from an open inode, keeping the inode."""
        orphan = f"{ino}-{self._mount_id}"
        self._remote.rename(parent, name, self._dir_ino(), orphan, 0)
        with self._lock:
            self._names[ino] = orphan

    def is_orphan(self, ino: int) -> bool:
        with self._lock:
            return ino in self._names

    def release(self, ino: int) -> None:
        """The last local handle closed: remove the inode for good."""
        with self._lock:
            orphan = self._names.pop(ino, None)
        if orphan is not None:
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
