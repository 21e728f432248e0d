"""Unlinks of files, answered at once and sent in batches.

Deleting many files should not cost a round trip each. The kernel has already
checked the permissions and that the name is not a directory, so what is left
for the server (the name still there) is known in advance as well as a cache
can know it. A mount therefore answers such an unlink at once and a sender
thread applies them in the order made, as many to a call as have queued while
the previous call was under way.

Ordering is kept by drain(): every other call of the mount waits until the
unlinks made before it are applied, so nothing this mount does or reads can
pass an unlink it made. An unlink that fails on the server (another node
removed the name first) is reported to its caller's callback; an error other
than ENOENT is kept for the mount's next fsync or close of a written file,
which fails with it, as a delayed write error would.
"""

import errno
import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

# Names to a call; the server takes at most 1000.
BATCH_MAX = 500

Name = tuple[int, str]  # parent inode, name


class DeferredUnlinks:
    def __init__(self, send: Callable[[Sequence[Name]], list[int]]) -> None:
        """`send` applies unlinks and returns an errno (0: done) per name."""
        self._send = send
        self._changed = threading.Condition()
        # Made and not yet applied, oldest first, each with who hears of its failure.
        self._queue: list[tuple[Name, Callable[[int], None]]] = []
        self._error: OSError | None = None
        self._sender: threading.Thread | None = None

    def put(self, parent: int, name: str, failed: Callable[[int], None]) -> None:
        """Queue the unlink; `failed(errno)` hears if the server did not apply it."""
        with self._changed:
            self._queue.append(((parent, name), failed))
            if self._sender is None:
                self._sender = threading.Thread(target=self._run, name="unlinks", daemon=True)
                self._sender.start()
            self._changed.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every unlink put before this call is applied (or failed),
        or `timeout` seconds pass; say whether they are."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue, timeout)

    def take_error(self) -> OSError | None:
        """The first error kept since the last call, if any (see module doc)."""
        with self._changed:
            error, self._error = self._error, None
            return error

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue:
                    self._changed.wait()
                batch = self._queue[:BATCH_MAX]
            try:
                outcomes = self._send([name for name, _ in batch])
            except OSError as exc:  # the server refused the call, or stayed away too long
                outcomes = [exc.errno or errno.EIO] * len(batch)
            except Exception:  # a bug must not leave drain() waiting for ever
                log.exception("sending unlinks failed")
                outcomes = [errno.EIO] * len(batch)
            for ((parent, name), failed), failure in zip(batch, outcomes, strict=True):
                if failure:
                    self._report(parent, name, failure)
                    failed(failure)
            with self._changed:
                del self._queue[: len(batch)]
                self._changed.notify_all()

    def _report(self, parent: int, name: str, failure: int) -> None:
        if failure == errno.ENOENT:
            # Someone else removed it first: gone, as asked.
            log.info("unlink of %r in %d: already gone on the server", name, parent)
        else:
            log.error("unlink of %r in %d failed: %s", name, parent, errno.errorcode.get(failure))
            with self._changed:
                if self._error is None:
                    self._error = OSError(failure, f"an earlier unlink of {name!r} failed")
