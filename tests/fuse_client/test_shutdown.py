"""A mount ends when the kernel lets go, even while the server does not answer.

After an unmount nobody takes the answer of a read any more, yet read-ahead (and
a read request the kernel dropped) may still wait for the server; they must not
hold the mount process for as long as the server stays away. These run
NetvolFS against a stand-in server, on a Unix socket, that never answers reads
beyond the first block.
"""

import contextlib
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from fuse_client import mounts
from fuse_client.filesystem import NetvolFS
from fuse_client.reader import BLOCK
from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from tests.harness.inprocess import netvol_fs

ROOT = 1
FILE = pb.Attr(ino=2, mode=stat.S_IFREG | 0o644, nlink=1, size=16 * BLOCK, data_version=1)
# Far beyond what the tests wait: a call still waiting then is stuck.
BOUND_SECONDS = 30.0


class StalledServer(filesystem_pb2_grpc.FilesystemServicer):
    """Answers the first block of FILE; every later read waits until released,
    and so does every GetAttr once `attrs_stall` is set."""

    def __init__(self) -> None:
        self.stalled = threading.Event()  # a call is waiting
        self.release = threading.Event()
        self.attrs_stall = threading.Event()

    def Lookup(self, request: pb.LookupRequest, context: Any) -> pb.Attr:
        return FILE

    def GetAttr(self, request: pb.GetAttrRequest, context: Any) -> pb.Attr:
        if self.attrs_stall.is_set():
            self.stalled.set()
            self.release.wait()
        return FILE

    def Read(self, request: pb.ReadRequest, context: Any) -> Iterator[pb.ReadChunk]:
        if request.offset > 0:
            self.stalled.set()
            self.release.wait()
        yield pb.ReadChunk(attr=FILE, data=bytes(min(request.length, BLOCK)))


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[tuple[StalledServer, NetvolFS]]:
    servicer = StalledServer()  # type: ignore[abstract]  # only the calls these tests make
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    filesystem_pb2_grpc.add_FilesystemServicer_to_server(servicer, server)
    address = f"unix:{tmp_path / 'server.sock'}"
    server.add_insecure_port(address)
    server.start()
    channel = grpc.insecure_channel(address)
    fs = netvol_fs(channel, Remote(channel, "volume", io_timeout=0), ROOT, attr_ttl=1.0)
    try:
        yield servicer, fs
    finally:
        servicer.release.set()
        fs.close()
        channel.close()
        server.stop(grace=None)


def _in_thread(job: Any) -> threading.Thread:
    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    return thread


def test_close_while_read_ahead_waits(stalled: tuple[StalledServer, NetvolFS]) -> None:
    server, fs = stalled
    fh, _ = fs.open("/file", 0)
    assert len(fs.read(fh, BLOCK, 0)) == BLOCK  # sequential: read-ahead starts
    fs.release(fh)
    assert server.stalled.wait(BOUND_SECONDS), "no read-ahead reached the server"

    closing = _in_thread(fs.close)
    closing.join(BOUND_SECONDS)
    assert not closing.is_alive(), "close() waits for read-ahead the server never answers"


def _ended_by_the_unmount(server: StalledServer, fs: NetvolFS, call: Callable[[], Any]) -> None:
    """`call` waits for the server; once the mount is gone it must fail, at once."""
    failed: list[OSError] = []

    def attempt() -> None:
        try:
            call()
        except OSError as exc:
            failed.append(exc)

    waiting = _in_thread(attempt)
    assert server.stalled.wait(BOUND_SECONDS), "the call did not reach the server"
    fs.unmounted()
    waiting.join(BOUND_SECONDS)
    assert not waiting.is_alive(), "the call still waits for the server after the unmount"
    assert failed, "the call returned what the server never sent"


def test_unmount_ends_a_read_waiting_for_the_server(
    stalled: tuple[StalledServer, NetvolFS],
) -> None:
    """libfuse destroys the file system only once every request is answered."""
    server, fs = stalled
    fh, _ = fs.open("/file", 0)
    _ended_by_the_unmount(server, fs, lambda: fs.read(fh, BLOCK, 4 * BLOCK))


def test_unmount_ends_a_stat_waiting_for_the_server(
    stalled: tuple[StalledServer, NetvolFS],
) -> None:
    """Any call that only asks is a read here: a stat the kernel dropped must not
    keep the mount process for as long as the server stays away."""
    server, fs = stalled
    fs.getattr("/file", None)
    fs.meta.drop_attr(FILE.ino)  # the cached attributes expired
    server.attrs_stall.set()
    _ended_by_the_unmount(server, fs, lambda: fs.getattr("/file", None))


def test_an_exited_mount_process_counts_as_gone_and_is_reaped_by_its_adopter() -> None:
    """A detached mount process is reaped by whatever adopted it; the node plugin,
    as a container's first process, adopts them and must reap them itself."""
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], os.environ)
    try:
        assert mounts.wait_for_exit(pid, BOUND_SECONDS)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped by wait_for_exit: no zombie left
    finally:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
