"""A mount whose lock session was lost moves its orphans to a new session in
the background, trying again until it lands."""

import contextlib
import errno
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

import pytest

from fuse_client import orphans
from fuse_client.locks import LockSession
from fuse_client.orphans import Orphans
from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

ROOT, DIRECTORY = 1, 2
OLD, NEW = "a" * 32, "b" * 32


class Server:
    """Renames, as the storage server would."""

    def __init__(self) -> None:
        self.renames: list[tuple[int, str, int, str]] = []

    @contextlib.contextmanager
    def hold(self, lock: threading.Lock) -> Iterator[None]:
        with lock:
            yield

    def lookup(self, parent: int, name: str) -> pb.Attr:
        return pb.Attr(ino=DIRECTORY)

    def rename(self, parent: int, name: str, new_parent: int, new_name: str, flags: int) -> None:
        self.renames.append((parent, name, new_parent, new_name))


class Session:
    """A lock session that fails to open `failures` times."""

    def __init__(self) -> None:
        self.id = OLD
        self.failures = 0
        self.lost: Callable[[], None] = lambda: None

    def current(self) -> str:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EIO, "storage server unreachable")
        return self.id

    def when_lost(self, hook: Callable[[], None]) -> None:
        self.lost = hook


def test_orphans_move_to_a_new_session_after_a_failed_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(orphans, "FIRST_CLAIM_RETRY_SECONDS", 0.05)
    server, session = Server(), Session()
    held = Orphans(cast(Remote, server), ROOT, cast(LockSession, session))
    number = held.adopt(ROOT, "f", 5)
    session.id, session.failures = NEW, 1
    session.lost()
    moved = (DIRECTORY, f"5-{OLD}-{number}", DIRECTORY, f"5-{NEW}-{number}")
    deadline = time.monotonic() + 5
    while moved not in server.renames and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.renames[-1] == moved
