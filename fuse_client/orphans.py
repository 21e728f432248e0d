"""Files unlinked while open stay usable through their open handles, as POSIX
requires. The name goes at once; the inode moves to a hidden directory at the
volume's root and is removed there when its last local handle closes (libfuse
tells us, through its .fuse_hidden rename and unlink: see NetvolFS._hide).

An orphan's name carries the mount's lock session (fuse_client.locks): while the
session is live, the mount is, however long its files stay open. A mount that
dies with orphans open leaves them behind, and a mount that starts later
removes those whose session is gone: closed, or lapsed (its lease ran out)
longer than the server's orphan grace ago. A mount that was cut off for
longer than the lease gets a new session and renames its orphans to it; one
cut off for longer than the grace may have lost them, which it logs. Orphans
named before sessions (an 8-digit mount id instead) are removed once older
than ORPHAN_MAX_AGE_NS.
"""

import errno
import itertools
import logging
import re
import stat
import threading
import time

from fuse_client.locks import LockSession
from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

log = logging.getLogger(__name__)

NAME = ".netvol-orphans"
# <inode>-<session id>-<number of the orphan in this mount>
SESSION_NAME = re.compile(r"[0-9]+-([0-9a-f]{32})-[0-9]+")
ORPHAN_MAX_AGE_NS = 24 * 3600 * 10**9
FIRST_CLAIM_RETRY_SECONDS = 1.0
MAX_CLAIM_RETRY_SECONDS = 60.0


def _name(ino: int, session: str, number: int) -> str:
    """An orphan's name, as SESSION_NAME reads it."""
    return f"{ino}-{session}-{number}"


class Orphans:
    def __init__(self, remote: Remote, root_ino: int, session: LockSession) -> None:
        self._remote = remote
        self._root = root_ino
        self._session = session
        session.when_lost(self._claim_again)
        self._lock = threading.Lock()
        # Held through the calls that name, rename or remove orphans, so that a
        # renaming to a new session sees every orphan and no name twice.
        self._naming = threading.Lock()
        self._dir: int | None = None
        self._count = itertools.count(1)
        # Each name taken from an open inode is an orphan of its own: two hard
        # links unlinked while open are two, released one after the other.
        # inode -> {orphan number: its name now}
        self._names: dict[int, dict[int, str]] = {}

    def _dir_ino(self) -> int:
        """The orphans' directory, made if need be; called holding _naming."""
        if self._dir is None:
            try:
                self._dir = self._remote.lookup(self._root, NAME).ino
            except FileNotFoundError:
                mode = stat.S_IFDIR | 0o700
                request = pb.MakeNodeRequest(parent=self._root, name=NAME, mode=mode)
                try:
                    self._dir = self._remote.make_node(request).attr.ino
                except FileExistsError:  # another node made it first
                    self._dir = self._remote.lookup(self._root, NAME).ino
        return self._dir

    def adopt(self, parent: int, name: str, ino: int) -> int:
        """Take the name away from an open inode, keeping the inode under an
        orphan name; returns the orphan's number, for `release`."""
        with self._remote.hold(self._naming):  # (a killed caller's name stays)
            number = next(self._count)
            orphan = _name(ino, self._session.current(), number)
            self._remote.rename(parent, name, self._dir_ino(), orphan, 0)
            with self._lock:
                self._names.setdefault(ino, {})[number] = orphan
            return number

    def links(self, ino: int) -> int:
        """How many of the inode's links are orphan names (the server counts them)."""
        with self._lock:
            return len(self._names.get(ino, ()))

    def release(self, ino: int, number: int) -> None:
        """The handles that kept the orphan closed: remove its name."""
        with self._naming:
            with self._lock:
                names = self._names.get(ino, {})
                orphan = names.pop(number, None)
                if not names:
                    self._names.pop(ino, None)
            if orphan is None:
                return  # removed while this mount was cut off (see _claim_again)
            try:
                self._remote.unlink(self._dir_ino(), orphan, directory=False)
            except FileNotFoundError:
                log.warning("orphan %s was already removed", orphan)

    def _claim_again(self) -> None:
        """The session was lost: put the orphans under a new one before a
        starting mount takes them for a dead mount's. In a thread of its own,
        so that neither a signal to the process whose lock call found the loss
        nor a failed try ends it: it tries until every orphan is moved."""
        threading.Thread(target=self._claim_until_done, name="orphan-claim", daemon=True).start()

    def _claim_until_done(self) -> None:
        delay = FIRST_CLAIM_RETRY_SECONDS
        while True:
            try:
                self._move_all()
                return
            except OSError as exc:
                log.error(
                    "cannot move orphans to a new session (%s), trying again in %.0f s: "
                    "a mount that starts once the server's orphan grace is over may "
                    "remove them",
                    exc,
                    delay,
                )
            time.sleep(delay)
            delay = min(delay * 2, MAX_CLAIM_RETRY_SECONDS)

    def _move_all(self) -> None:
        with self._naming:
            with self._lock:
                held = [
                    (ino, number, orphan)
                    for ino, names in self._names.items()
                    for number, orphan in names.items()
                ]
            if not held:
                return
            session, directory = self._session.current(), self._dir_ino()
            for ino, number, orphan in held:
                renamed = _name(ino, session, number)
                if renamed != orphan:  # (moved by an earlier try)
                    self._move(directory, ino, number, orphan, renamed)

    def _move(self, directory: int, ino: int, number: int, orphan: str, renamed: str) -> None:
        """Rename one orphan (called holding _naming)."""
        try:
            self._remote.rename(directory, orphan, directory, renamed, 0)
        except FileNotFoundError:
            # An earlier try's rename may have landed though its answer did not.
            if not self._is_named(directory, renamed, ino):
                self._lost(ino, number, orphan)
                return
        with self._lock:
            self._names.get(ino, {})[number] = renamed

    def _is_named(self, directory: int, name: str, ino: int) -> bool:
        try:
            return self._remote.lookup(directory, name).ino == ino
        except FileNotFoundError:
            return False

    def _lost(self, ino: int, number: int, orphan: str) -> None:
        log.error(
            "orphan %s (inode %d, unlinked while open here) was removed while this "
            "mount was cut off: its open files have lost their data",
            orphan,
            ino,
        )
        with self._lock:
            self._names.get(ino, {}).pop(number, None)

    def sweep(self) -> None:
        """Remove the orphans of mounts that are gone."""
        try:
            directory = self._remote.lookup(self._root, NAME).ino
        except FileNotFoundError:
            return
        entries = list(self._remote.readdir(directory))
        owners = {e.name: m.group(1) for e in entries if (m := SESSION_NAME.fullmatch(e.name))}
        try:
            claiming = self._session.claiming(sorted(set(owners.values()))) if owners else set()
        except OSError as exc:
            log.warning("cannot ask which mounts are live (%s): orphans are left", exc)
            return
        cutoff = time.time_ns() - ORPHAN_MAX_AGE_NS
        for entry in entries:
            owner = owners.get(entry.name)
            kept = owner in claiming if owner else entry.attr.ctime_ns >= cutoff
            if kept:
                continue
            try:
                self._remote.unlink(directory, entry.name, directory=False)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    log.warning("cannot remove stale orphan %s: %s", entry.name, exc)
