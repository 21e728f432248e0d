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
    """Names in the root and the orphans' directory, as the storage server
    keeps them; with `answers_lost`, that many renames land but fail at the
    mount (as at --io-timeout)."""

    def __init__(self) -> None:
        self.names = {(ROOT, "f"): 5}
        self.renames: list[tuple[int, str, int, str]] = []
        self.unlinked: list[str] = []
        self.answers_lost = 0

    @contextlib.contextmanager
    def hold(self, lock: threading.Lock) -> Iterator[None]:
        with lock:
            yield

    def lookup(self, parent: int, name: str) -> pb.Attr:
        if (parent, name) == (ROOT, orphans.NAME):
            return pb.Attr(ino=DIRECTORY)
        if (parent, name) not in self.names:
            raise FileNotFoundError(errno.ENOENT, name)
        return pb.Attr(ino=self.names[parent, name])

    def rename(self, parent: int, name: str, new_parent: int, new_name: str, flags: int) -> None:
        if (parent, name) not in self.names:
            raise FileNotFoundError(errno.ENOENT, name)
        self.names[new_parent, new_name] = self.names.pop((parent, name))
        self.renames.append((parent, name, new_parent, new_name))
        if self.answers_lost:
            self.answers_lost -= 1
            raise OSError(errno.EIO, "storage server unreachable")

    def unlink(self, parent: int, name: str, *, directory: bool) -> None:
        del self.names[parent, name]
        self.unlinked.append(name)


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


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orphans, "FIRST_CLAIM_RETRY_SECONDS", 0.05)


def _lose_session(server: Server, session: Session, **failing: int) -> tuple[Orphans, int]:
    """An orphan of inode 5 under session OLD, and the session lost for NEW."""
    held = Orphans(cast(Remote, server), ROOT, cast(LockSession, session))
    number = held.adopt(ROOT, "f", 5)
    session.id, session.failures = NEW, failing.get("sessions", 0)
    server.answers_lost = failing.get("answers", 0)
    session.lost()
    return held, number


def _wait_for(server: Server, name: str) -> None:
    deadline = time.monotonic() + 5
    while (DIRECTORY, name) not in server.names and time.monotonic() < deadline:
        time.sleep(0.01)


def test_orphans_move_to_a_new_session_after_a_failed_try() -> None:
    server, session = Server(), Session()
    held, number = _lose_session(server, session, sessions=1)
    _wait_for(server, f"5-{NEW}-{number}")
    assert server.renames[-1] == (DIRECTORY, f"5-{OLD}-{number}", DIRECTORY, f"5-{NEW}-{number}")
    held.release(5, number)
    assert server.unlinked == [f"5-{NEW}-{number}"]


def test_a_move_that_landed_unanswered_is_kept_track_of() -> None:
    server, session = Server(), Session()
    held, number = _lose_session(server, session, answers=1)
    _wait_for(server, f"5-{NEW}-{number}")
    time.sleep(0.2)  # the next try finds the old name gone
    assert held.links(5) == 1
    held.release(5, number)
    assert server.unlinked == [f"5-{NEW}-{number}"]
