"""One operation at a time per volume: a second call while one is in flight gets
ABORTED, as the spec asks, and the CO retries it later with back-off."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from csi.errors import CsiError


class VolumeLocks:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        # Only keys with a call in flight: the set never outgrows the thread pool.
        self._busy: set[str] = set()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._mutex:
            if key in self._busy:
                raise CsiError(
                    grpc.StatusCode.ABORTED, f"an operation on {key!r} is already in progress"
                )
            self._busy.add(key)
        try:
            yield
        finally:
            with self._mutex:
                self._busy.discard(key)
