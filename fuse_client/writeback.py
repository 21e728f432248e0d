"""Write-behind: bytes written to a file are gathered and stored in large pieces.

write() returns once the bytes are buffered; a background sender stores a full
buffer while the next one fills (one in flight per file, so a file's writes
commit in order). flush and fsync wait until everything buffered is stored:
that is what makes close and fsync durable. A failure of a background store is
reported by the file's next write, flush or fsync, never dropped.
"""

import errno
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

FLUSH_BYTES = 8 * 1024 * 1024
# Many small random writes become many slices; store them before they pile up.
FLUSH_EXTENTS = 1024


class _Extents:
    """Buffered writes in order; a write that continues the last one extends it."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytearray]] = []
        self.bytes = 0

    def add(self, offset: int, data: bytes) -> None:
        if self.items:
            last_offset, last = self.items[-1]
            if last_offset + len(last) == offset:
                last += data
                self.bytes += len(data)
                return
        self.items.append((offset, bytearray(data)))
        self.bytes += len(data)

    def end(self) -> int:
        return max((o + len(d) for o, d in self.items), default=0)


class FileWriter:
    """The write-behind state of one inode, shared by all its open handles."""

    def __init__(
        self,
        ino: int,
        remote: Remote,
        executor: ThreadPoolExecutor,
        on_stored: Callable[[pb.Attr], None],
    ) -> None:
        self.ino = ino
        self._remote = remote
        self._executor = executor
        self._on_stored = on_stored
        self._lock = threading.Lock()
        self._pending = _Extents()
        self._inflight: Future[pb.Attr] | None = None
        self._inflight_end = 0
        self._error: OSError | None = None

    @property
    def dirty(self) -> bool:
        return bool(self._pending.items) or self._inflight is not None

    def dirty_end(self) -> int:
        """The file size the buffered writes imply (0 when nothing is buffered)."""
        with self._lock:
            return max(self._pending.end(), self._inflight_end if self._inflight else 0)

    def dirty_bytes(self) -> int:
        return self._pending.bytes

    def write(self, offset: int, data: bytes) -> None:
        with self._lock:
            self._raise_error()
            self._pending.add(offset, data)
            if self._pending.bytes >= FLUSH_BYTES or len(self._pending.items) >= FLUSH_EXTENTS:
                self._dispatch()

    def write_through(self, offset: int, data: bytes) -> None:
        """Store `data` now, after what is buffered; its error is this call's."""
        self.flush()
        self._on_stored(self._remote.write(self.ino, [(offset, data)]))

    def flush(self) -> None:
        with self._lock:
            if self._pending.items:
                self._dispatch()
            self._wait()
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _wait(self) -> None:
        if self._inflight is None:
            return
        try:
            self._inflight.result()
        except OSError as exc:
            self._error = exc
        except Exception as exc:  # a bug must still fail the write, not lose it silently
            self._error = OSError(errno.EIO, f"storing data failed: {exc!r}")
        self._inflight = None

    def _dispatch(self) -> None:
        self._wait()  # one store in flight per file keeps its writes in order
        extents, self._pending = self._pending.items, _Extents()
        self._inflight_end = max(o + len(d) for o, d in extents)
        self._inflight = self._executor.submit(self._store, extents)

    def _store(self, extents: list[tuple[int, bytearray]]) -> pb.Attr:
        attr = self._remote.write(self.ino, extents)
        self._on_stored(attr)
        return attr
