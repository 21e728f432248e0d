"""Calls to the storage server's file system, as a hard mount makes them.

While the server is unreachable a call waits and retries (with the same
request id, so the server applies it once) until it answers or the configured
bound passes. Failures leave as OSError with the errno the server sent: this is
the one place where gRPC errors become errnos.

The server commits changes of names and attributes without waiting for its
disk; a Write waits, and so does a Sync. Remote counts the changes it made
since the last durable commit, so that close and fsync ask for a Sync only
when something of this mount is not yet on stable storage.

Unlinks of files may be deferred (fuse_client.unlinks): every other call
waits until those made before it are applied, so the order of this mount's
calls holds.

A process that is killed stops waiting wherever it waits for the server (for
a call, for shared work such as a read another thread fetches, for deferred
unlinks): `killed()` says so for the thread serving it, and the wait ends with
EINTR. The work itself goes on; nothing another process waits for is dropped.

Reads (and every other call that only asks) are the exception once the mount
is gone: nobody takes their answer any more (read-ahead, or a request the
kernel has dropped), so stop_reads() makes them fail at once instead of keeping
the process alive while the server is slow or away. Writes keep waiting: they
carry data that was not stored yet.
"""

import concurrent.futures
import contextlib
import errno
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import grpc

from fuse_client.unlinks import DeferredUnlinks, Name
from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from storage_server.rpc import ERRNO_KEY

log = logging.getLogger(__name__)

T = TypeVar("T")
Q = TypeVar("Q")

# For failures that carry no errno (volume gone, token revoked, server bug).
STATUS_ERRNO = {
    grpc.StatusCode.NOT_FOUND: errno.ENOENT,
    grpc.StatusCode.ALREADY_EXISTS: errno.EEXIST,
    grpc.StatusCode.PERMISSION_DENIED: errno.EACCES,
    grpc.StatusCode.UNAUTHENTICATED: errno.EACCES,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errno.ENOSPC,
    grpc.StatusCode.INVALID_ARGUMENT: errno.EINVAL,
    grpc.StatusCode.OUT_OF_RANGE: errno.EFBIG,
}
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
ATTEMPT_SECONDS = 60.0
MIN_ATTEMPT_SECONDS = 0.1  # the last attempt within --io-timeout still gets a chance
# How often a call waiting for the server looks whether its caller was killed.
KILLED_CHECK_SECONDS = 0.25
WRITE_PIECE = 1024 * 1024


def _errno_of(exc: grpc.RpcError) -> int:
    for item in exc.trailing_metadata() or ():
        if item.key == ERRNO_KEY:
            return int(item.value)
    return STATUS_ERRNO.get(exc.code(), errno.EIO)


def _cut(
    extents: Iterable[tuple[int, bytes | bytearray | memoryview]],
) -> Iterator[tuple[int, bytes]]:
    """The extents in pieces of at most WRITE_PIECE bytes, as bytes (what
    protobuf takes); a piece that is bytes already is not copied."""
    for offset, data in extents:
        if len(data) <= WRITE_PIECE and isinstance(data, bytes):
            yield offset, data
            continue
        view = memoryview(data)
        for start in range(0, len(view), WRITE_PIECE):
            yield offset + start, bytes(view[start : start + WRITE_PIECE])


def _fill(message: pb.WritePieces, pieces: Iterable[tuple[int, bytes]]) -> None:
    """Add the pieces to `message` in place: built apart and passed in, each
    message would copy every piece's bytes once more."""
    for offset, data in pieces:
        message.pieces.add(offset=offset, data=data)


def _raise_if_set(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise OSError(errno.ESHUTDOWN, "the mount is gone")


def new_request_id() -> str:
    return uuid.uuid4().hex


class Remote:
    """The Filesystem stub of one volume, with retries and errno mapping."""

    def __init__(
        self,
        channel: grpc.Channel,
        volume_id: str,
        io_timeout: float,
        killed: Callable[[], bool] = lambda: False,
        *,
        durable_names: bool = False,
    ) -> None:
        self.channel = channel
        self._stub = filesystem_pb2_grpc.FilesystemStub(channel)
        self.volume_id = volume_id
        # 0 waits for ever, as an NFS hard mount does; and as there, a process
        # that is killed (`killed()` in the thread serving its request) stops
        # waiting, so that it can die.
        self._io_timeout = io_timeout
        self._killed = killed
        # What OpenVolume said: MakeNode and SetAttr of the size commit durably.
        self._durable_names = durable_names
        self._durability = threading.Lock()
        self._changes = 0  # relaxed changes answered so far
        self._durable = 0  # how many of them a durable commit covers
        self._reads_stopped = threading.Event()
        self._reads: set[grpc.RpcContext] = set()  # under way, for stop_reads()
        self._reads_lock = threading.Lock()
        self._unlinks = DeferredUnlinks(self._unlink_many)

    def _changed(self, reply: T) -> T:
        with self._durability:
            self._changes += 1
        return reply

    def _durable_call(self, call: Callable[[], T]) -> T:
        """A call whose commit is durable: it covers every change answered before it."""
        self.drain()
        with self._durability:
            covers = self._changes
        reply = call()
        with self._durability:
            self._durable = max(self._durable, covers)
        return reply

    def _naming_call(self, call: Callable[[], T]) -> T:
        """A call that hands out an inode number or a data version: durable on
        servers that say so, a change for a later Sync to cover on older ones."""
        if self._durable_names:
            return self._durable_call(call)
        return self._changed(call())

    def sync(self) -> None:
        """Return once every change this mount made is on the server's stable
        storage; fail with the error of a deferred unlink that failed since the
        last time."""
        self.drain()
        error = self._unlinks.take_error()
        if error is not None:
            raise error
        with self._durability:
            if self._durable == self._changes:
                return
        request = pb.SyncRequest(volume_id=self.volume_id, request_id=new_request_id())
        self._durable_call(lambda: self._unary(self._stub.Sync, request))

    def stop_reads(self) -> None:
        """Fail reads from now on, and cancel those under way."""
        self._reads_stopped.set()
        with self._reads_lock:
            calls = list(self._reads)
        for call in calls:
            call.cancel()

    def drain(self) -> None:
        """Return once the deferred unlinks made so far are applied."""
        while not self._unlinks.drain(KILLED_CHECK_SECONDS):
            self.stop_if_killed()

    def stop_if_killed(self) -> None:
        """EINTR if the process of the request this thread serves is being killed."""
        if self._killed():
            raise OSError(errno.EINTR, "the calling process was killed")

    def wait(self, work: "concurrent.futures.Future[Any]", *, bounded: bool = False) -> None:
        """Return once `work` (which other callers may share) is done; EINTR if
        the caller is killed first, and the work goes on. `bounded`: EIO once
        --io-timeout is up, for work that itself waits for the server unbounded."""
        started = time.monotonic()
        while not concurrent.futures.wait([work], timeout=KILLED_CHECK_SECONDS).done:
            self.stop_if_killed()
            waited = time.monotonic() - started
            if bounded and self._io_timeout and waited >= self._io_timeout:
                raise OSError(errno.EIO, f"storage server unreachable for {waited:.0f}s")

    @contextlib.contextmanager
    def hold(self, lock: threading.Lock) -> Iterator[None]:
        """`lock`, whose holder may wait for the server: a killed caller stops
        waiting for it (EINTR)."""
        while not lock.acquire(timeout=KILLED_CHECK_SECONDS):
            self.stop_if_killed()
        try:
            yield
        finally:
            lock.release()

    def _call(
        self,
        what: str,
        attempt: Callable[[float], T],
        stop: threading.Event | None = None,
        *,
        ordered: bool = True,
    ) -> T:
        """Try `attempt(seconds)` until it succeeds, fails for good, or `stop`
        is set. Each attempt may take `seconds`: long enough for a slow commit,
        short enough that --io-timeout bounds the whole wait even while the
        server does not answer at all. An `ordered` call first waits for the
        deferred unlinks made before it."""
        if ordered:
            self.drain()
        started = time.monotonic()
        delay = 0.05
        while True:
            _raise_if_set(stop)
            try:
                return attempt(self._attempt_seconds(time.monotonic() - started))
            except grpc.RpcError as exc:
                _raise_if_set(stop)
                code = exc.code()
                waited = time.monotonic() - started
                if code not in RETRYABLE:
                    raise OSError(_errno_of(exc), exc.details()) from exc
                self.stop_if_killed()
                if self._io_timeout and waited >= self._io_timeout:
                    log.error("%s: gave up after %.0fs: %s", what, waited, code.name)
                    raise OSError(
                        errno.EIO, f"storage server unreachable for {waited:.0f}s"
                    ) from exc
                if delay >= 1.0:
                    # The details tell a server that is away from one that
                    # asked for the call again (a store that took too long).
                    log.warning(
                        "%s: storage server unavailable (%s: %s), retrying",
                        what,
                        code.name,
                        exc.details(),
                    )
                if stop is None:
                    time.sleep(delay)
                else:
                    stop.wait(delay)
                delay = min(delay * 2, 2.0)

    def _attempt_seconds(self, waited: float) -> float:
        if not self._io_timeout:
            return ATTEMPT_SECONDS
        return max(min(ATTEMPT_SECONDS, self._io_timeout - waited), MIN_ATTEMPT_SECONDS)

    def _result(self, call: "grpc.Future[T]") -> T:
        """The call's answer; the call is cancelled if its caller is killed meanwhile."""
        while True:
            try:
                return call.result(timeout=KILLED_CHECK_SECONDS)
            except grpc.FutureTimeoutError:
                try:
                    self.stop_if_killed()
                except InterruptedError:
                    call.cancel()
                    raise

    def _unary(self, method: "grpc.UnaryUnaryMultiCallable[Q, T]", request: Q) -> T:
        name = type(request).__name__.removesuffix("Request")
        return self._call(
            name,
            lambda seconds: self._result(
                method.future(request, timeout=seconds, wait_for_ready=True)
            ),
        )

    def _query(self, method: "grpc.UnaryUnaryMultiCallable[Q, T]", request: Q) -> T:
        """A unary call that changes nothing: a read as far as stop_reads() goes."""

        def attempt(seconds: float) -> T:
            call = method.future(request, timeout=seconds, wait_for_ready=True)
            with self._reads_lock:
                self._reads.add(call)
            try:
                _raise_if_set(self._reads_stopped)  # stop_reads() ran before the add
                return self._result(call)
            except grpc.FutureCancelledError:
                _raise_if_set(self._reads_stopped)
                raise
            finally:
                with self._reads_lock:
                    self._reads.discard(call)

        name = type(request).__name__.removesuffix("Request")
        return self._call(name, attempt, self._reads_stopped)

    def lookup(self, parent: int, name: str) -> pb.Attr:
        request = pb.LookupRequest(volume_id=self.volume_id, parent=parent, name=name)
        return self._query(self._stub.Lookup, request)

    def getattr(self, ino: int) -> pb.Attr:
        return self._query(self._stub.GetAttr, pb.GetAttrRequest(volume_id=self.volume_id, ino=ino))

    def setattr(self, request: pb.SetAttrRequest) -> pb.Attr:
        request.volume_id = self.volume_id
        request.request_id = new_request_id()
        if request.HasField("size"):
            return self._naming_call(lambda: self._unary(self._stub.SetAttr, request))
        return self._changed(self._unary(self._stub.SetAttr, request))

    def readdir(self, ino: int) -> Iterator[pb.DirEntry]:
        after = ""
        while True:
            page = self.readdir_page(ino, after)
            yield from page.entries
            if not page.more or not page.entries:
                return
            after = page.entries[-1].name

    def readdir_page(self, ino: int, after: str, limit: int = 0) -> pb.ReadDirResponse:
        """Up to `limit` entries named after `after` (0: the server's page size).
        A read as far as stop_reads() goes: pages are fetched ahead of the kernel."""
        request = pb.ReadDirRequest(volume_id=self.volume_id, ino=ino, after=after, limit=limit)
        return self._query(self._stub.ReadDir, request)

    def make_node(self, request: pb.MakeNodeRequest) -> pb.EntryReply:
        request.volume_id = self.volume_id
        request.request_id = new_request_id()
        return self._naming_call(lambda: self._unary(self._stub.MakeNode, request))

    def link(self, ino: int, new_parent: int, new_name: str) -> pb.EntryReply:
        request = pb.LinkRequest(
            volume_id=self.volume_id,
            request_id=new_request_id(),
            ino=ino,
            new_parent=new_parent,
            new_name=new_name,
        )
        return self._changed(self._unary(self._stub.Link, request))

    def unlink(self, parent: int, name: str, directory: bool) -> pb.UnlinkResponse:
        request = pb.UnlinkRequest(
            volume_id=self.volume_id,
            request_id=new_request_id(),
            parent=parent,
            name=name,
            directory=directory,
        )
        return self._changed(self._unary(self._stub.Unlink, request))

    def unlink_soon(self, parent: int, name: str, failed: Callable[[int], None]) -> None:
        """Unlink a file (not a directory) without waiting for the server;
        `failed(errno)` hears if the server did not."""
        self._unlinks.put(parent, name, failed)

    def _unlink_many(self, names: Sequence[Name]) -> list[int]:
        request = pb.UnlinkManyRequest(
            volume_id=self.volume_id,
            request_id=new_request_id(),
            names=[pb.UnlinkName(parent=parent, name=name) for parent, name in names],
        )
        reply = self._call(
            "UnlinkMany",
            lambda seconds: self._stub.UnlinkMany(request, timeout=seconds, wait_for_ready=True),
            ordered=False,
        )
        self._changed(reply)
        return [outcome.errno for outcome in reply.outcomes]

    def rename(
        self, parent: int, name: str, new_parent: int, new_name: str, flags: int
    ) -> pb.RenameResponse:
        request = pb.RenameRequest(
            volume_id=self.volume_id,
            request_id=new_request_id(),
            parent=parent,
            name=name,
            new_parent=new_parent,
            new_name=new_name,
            flags=flags,
        )
        return self._changed(self._unary(self._stub.Rename, request))

    def readlink(self, ino: int) -> str:
        request = pb.ReadLinkRequest(volume_id=self.volume_id, ino=ino)
        return self._query(self._stub.ReadLink, request).target

    def read(self, ino: int, offset: int, length: int) -> tuple[pb.Attr, bytes]:
        """The bytes of [offset, offset+length), short at end of file."""
        request = pb.ReadRequest(volume_id=self.volume_id, ino=ino, offset=offset, length=length)

        def attempt(seconds: float) -> tuple[pb.Attr, bytes]:
            call = self._stub.Read(request, timeout=seconds, wait_for_ready=True)
            with self._reads_lock:
                self._reads.add(call)
            try:
                _raise_if_set(self._reads_stopped)  # stop_reads() ran before the add
                chunks = list(call)
            finally:
                with self._reads_lock:
                    self._reads.discard(call)
            return chunks[0].attr, b"".join(c.data for c in chunks)

        return self._call("Read", attempt, self._reads_stopped)

    def write(
        self, ino: int, extents: Iterable[tuple[int, bytes | bytearray | memoryview]]
    ) -> pb.Attr:
        """Store the extents; returns once they are durable and the file points at them."""
        header = pb.WriteHeader(volume_id=self.volume_id, request_id=new_request_id(), ino=ino)
        extents = list(extents)

        if sum(len(data) for _, data in extents) <= WRITE_PIECE:
            # All in one message: a unary call costs less than a stream.
            request = pb.WriteBatchRequest(header=header)
            _fill(request.pieces, _cut(extents))
            return self._durable_call(lambda: self._unary(self._stub.WriteBatch, request))

        def message_of(batch: list[tuple[int, bytes]]) -> pb.WriteRequest:
            message = pb.WriteRequest()
            _fill(message.pieces, batch)
            return message

        def messages() -> Iterator[pb.WriteRequest]:
            yield pb.WriteRequest(header=header)
            # Pieces share messages of up to WRITE_PIECE bytes; each attempt
            # cuts them again, so at most one message's copies are held.
            batch: list[tuple[int, bytes]] = []
            size = 0
            for offset, data in _cut(extents):
                if batch and size + len(data) > WRITE_PIECE:
                    yield message_of(batch)
                    batch, size = [], 0
                batch.append((offset, data))
                size += len(data)
            if batch:
                yield message_of(batch)

        return self._durable_call(
            lambda: self._call(
                "Write",
                lambda seconds: self._stub.Write(messages(), timeout=seconds, wait_for_ready=True),
            )
        )

    def statfs(self) -> pb.StatFsResponse:
        return self._query(self._stub.StatFs, pb.StatFsRequest(volume_id=self.volume_id))

    def getxattr(self, ino: int, name: str) -> bytes:
        request = pb.GetXattrRequest(volume_id=self.volume_id, ino=ino, name=name)
        return self._query(self._stub.GetXattr, request).value

    def listxattr(self, ino: int) -> list[str]:
        request = pb.ListXattrRequest(volume_id=self.volume_id, ino=ino)
        return list(self._query(self._stub.ListXattr, request).names)

    def setxattr(self, ino: int, name: str, value: bytes, flags: int) -> None:
        request = pb.SetXattrRequest(
            volume_id=self.volume_id,
            request_id=new_request_id(),
            ino=ino,
            name=name,
            value=value,
            flags=flags,
        )
        self._changed(self._unary(self._stub.SetXattr, request))

    def removexattr(self, ino: int, name: str) -> None:
        request = pb.RemoveXattrRequest(
            volume_id=self.volume_id, request_id=new_request_id(), ino=ino, name=name
        )
        self._changed(self._unary(self._stub.RemoveXattr, request))


def open_volume(channel: grpc.Channel, name: str, timeout: float) -> pb.OpenVolumeResponse:
    stub = filesystem_pb2_grpc.FilesystemStub(channel)
    try:
        return stub.OpenVolume(pb.OpenVolumeRequest(name=name), timeout=timeout)
    except grpc.RpcError as exc:
        raise OSError(_errno_of(exc), exc.details()) from exc
