"""What NetvolFS does with buffered writes when a store fails, at unmount, when
files of one inode open and close around each other, and when stores finish
out of order: against a real server, without FUSE, with Remotes that fail or
delay the stores they are told to."""

import errno
import itertools
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
import pytest

from fuse_client import writeback
from fuse_client.filesystem import NetvolFS
from fuse_client.remote import Remote
from fuse_client.writeback import Buffer
from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server.client import connect
from tests.harness.inprocess import netvol_fs
from tests.harness.server import StorageServer
from tests.harness.volume import Volume

EIO = OSError(errno.EIO, "the store failed")


class FailingRemote(Remote):
    """Fails the next `failures` stores with EIO, as an exhausted io_timeout would."""

    failures = 0

    def write(self, ino: int, extents: Iterable[tuple[int, Buffer]]) -> pb.Attr:
        if self.failures:
            self.failures -= 1
            raise EIO
        return super().write(ino, extents)


@pytest.fixture
def volume(fs_server: StorageServer) -> Volume:
    return Volume(fs_server)


@pytest.fixture
def channel(volume: Volume) -> Iterator[grpc.Channel]:
    channel = connect(volume.server.client_settings())
    yield channel
    channel.close()


@pytest.fixture
def remote(volume: Volume, channel: grpc.Channel) -> FailingRemote:
    return FailingRemote(channel, volume.id, io_timeout=10)


@pytest.fixture
def fs(volume: Volume, channel: grpc.Channel, remote: FailingRemote) -> Iterator[NetvolFS]:
    netvol = netvol_fs(channel, remote, volume.root, attr_ttl=0.3)
    yield netvol
    netvol.close()


def create(fs: NetvolFS, path: str) -> int:
    return fs.create(path, stat.S_IFREG | 0o644, 0, 0)[0]


def stored(volume: Volume, name: str) -> bytes:
    return volume.read(volume.lookup(name).ino)


def test_a_failed_store_is_told_once_to_every_file_open_at_the_time(
    fs: NetvolFS, remote: FailingRemote
) -> None:
    writer = create(fs, "/f")
    reader = fs.open("/f", os.O_RDONLY)[0]
    fs.write(writer, b"lost", 0)
    remote.failures = 1
    assert fs.read(reader, 10, 0) == b""  # the server's bytes; the error is not the reader's
    with pytest.raises(OSError) as info:
        fs.fsync(writer)
    assert info.value.errno == errno.EIO
    fs.fsync(writer)  # told once
    with pytest.raises(OSError):
        fs.flush(reader)  # open then too: it hears of it as well
    later = fs.open("/f", os.O_RDONLY)[0]
    fs.fsync(later)  # opened after the failure: not its to hear
    for fh in (writer, reader, later):
        fs.release(fh)


def test_unmount_stores_every_file_when_one_fails(
    fs: NetvolFS, remote: FailingRemote, volume: Volume
) -> None:
    first, second = create(fs, "/a"), create(fs, "/b")
    fs.write(first, b"first", 0)
    fs.write(second, b"second", 0)
    fs.unlink("/a")  # applied by the server later, at the latest when the mount goes
    remote.failures = 1
    fs.close()
    assert stored(volume, "b") == b"second"
    assert [entry.name for entry in volume.readdir().entries] == ["b"]


def test_a_file_opened_while_the_last_one_closes_keeps_its_writes(
    fs: NetvolFS, volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """release() decides that no file of the inode is open and lets its writer
    go; an open and write in between must not go to the writer let go."""
    first = create(fs, "/f")
    fs.write(first, b"old", 0)
    fs.flush(first)
    took_writer = threading.Event()
    released = threading.Event()
    is_open, would_overfill = fs._is_open, fs._would_overfill

    def opening_meanwhile(ino: int) -> bool:
        answer = is_open(ino)
        if not answer and not took_writer.is_set():
            threading.Thread(target=open_and_write).start()
            took_writer.wait(0.5)  # as far as the other thread can get
        return answer

    def after_the_release(extra: int) -> bool:
        took_writer.set()
        released.wait(5)
        return would_overfill(extra)

    written: list[int] = []

    def open_and_write() -> None:
        fh = fs.open("/f", os.O_WRONLY)[0]
        fs.write(fh, b"new", 0)
        written.append(fh)

    monkeypatch.setattr(fs, "_is_open", opening_meanwhile)
    monkeypatch.setattr(fs, "_would_overfill", after_the_release)
    fs.release(first)
    released.set()
    took_writer.wait(5)
    while not written:
        threading.Event().wait(0.01)
    fs.flush(written[0])
    fs.release(written[0])
    assert stored(volume, "f") == b"new"


def test_times_set_before_close_are_kept(fs: NetvolFS, volume: Volume) -> None:
    """cp -p and tar write the data, then set the times, then close."""
    fh = create(fs, "/f")
    fs.write(fh, b"data", 0)
    old = 10**18
    fs.utimens(None, fh, atime=old, mtime=old, atime_now=False, mtime_now=False)
    fs.flush(fh)
    fs.release(fh)
    attr = volume.lookup("f")
    assert (attr.mtime_ns, attr.size) == (old, 4)


def test_a_write_through_one_name_leaves_the_others_pages_stale(
    volume: Volume, channel: grpc.Channel, remote: FailingRemote
) -> None:
    """libfuse's path API gives each name of a file its own kernel inode, so a
    write through one name must drop what the kernel caches under the others,
    open or not, and their next open must not keep their pages."""
    dropped: list[str] = []
    fs = netvol_fs(channel, remote, volume.root, attr_ttl=0.3, invalidate_path=dropped.append)
    try:
        fh = create(fs, "/x")
        fs.write(fh, b"old!", 0)
        fs.flush(fh)
        fs.release(fh)
        fs.link("/x", "/y")
        fs.getattr("/y", None)
        reader = fs.open("/y", os.O_RDONLY)[0]
        writer = fs.open("/x", os.O_WRONLY)[0]
        dropped.clear()
        fs.write(writer, b"NEW!", 0)
        fs.flush(writer)
        assert dropped == ["/y"]
        assert fs.read(reader, 4, 0) == b"NEW!"
        fs.release(reader)
        fs.release(writer)
        again, keep = fs.open("/y", os.O_RDONLY)
        assert not keep
        fs.release(again)
        # Through the writer's own name the kernel's pages are current.
        assert fs.open("/x", os.O_RDONLY)[1]
    finally:
        fs.close()


def test_pages_are_not_kept_over_another_nodes_write(fs: NetvolFS, volume: Volume) -> None:
    """Our store shows a version more than one past the one we knew: another node
    wrote in between, and the kernel's pages may lack its bytes."""
    fh = create(fs, "/f")
    fs.write(fh, b"A" * 8, 0)
    fs.flush(fh)
    volume.write(volume.lookup("f").ino, 0, b"B" * 4)
    fs.write(fh, b"C" * 4, 4)
    fs.flush(fh)
    fs.release(fh)
    again, keep = fs.open("/f", os.O_RDONLY)
    assert not keep
    assert fs.read(again, 8, 0) == b"BBBBCCCC"
    fs.release(again)


class CountsReads(Remote):
    """Counts the reads of a file's first block."""

    reads_at_start = 0

    def read(self, ino: int, offset: int, length: int) -> tuple[pb.Attr, bytes]:
        if offset == 0:
            self.reads_at_start += 1
        return super().read(ino, offset, length)


def read_twice_fetched_once(fs: NetvolFS, remote: CountsReads, fh: int, expected: bytes) -> None:
    for _ in range(2):
        assert fs.read(fh, len(expected), 0) == expected
    assert remote.reads_at_start == 1


class FirstAnswerLate(CountsReads):
    """The first store commits first, but its answer comes back only after
    `meanwhile()` has run; later stores commit after it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meanwhile: Callable[[pb.Attr], None] = lambda attr: None
        self._stores = itertools.count()
        self._first_committed = threading.Event()

    def write(self, ino: int, extents: Iterable[tuple[int, Buffer]]) -> pb.Attr:
        first = next(self._stores) == 0
        if not first:
            self._first_committed.wait(10)
        attr = super().write(ino, extents)
        if first:
            self._first_committed.set()
            self.meanwhile(attr)
        return attr


@pytest.fixture
def late(volume: Volume, channel: grpc.Channel) -> FirstAnswerLate:
    return FirstAnswerLate(channel, volume.id, io_timeout=10)


def test_a_store_answered_late_leaves_the_cache_at_the_newest_version(
    volume: Volume, channel: grpc.Channel, late: FirstAnswerLate
) -> None:
    """Two stores of disjoint ranges under way at once, answered out of order:
    reads through a file open across them are cached afterwards."""
    fs = netvol_fs(channel, late, volume.root, attr_ttl=0.3)

    def until_the_second_is_taken_in(attr: pb.Attr) -> None:
        for _ in range(1000):
            if fs.data.version(attr.ino) == attr.data_version + 1:
                return
            threading.Event().wait(0.01)
        # Else the answers came in order and the test would show nothing: fail the store.
        raise OSError(errno.EIO, "the second store was not taken in")

    late.meanwhile = until_the_second_is_taken_in
    try:
        fh = create(fs, "/f")
        reader = fs.open("/f", os.O_RDONLY)[0]
        half = b"a" * writeback.FLUSH_BYTES, b"b" * writeback.FLUSH_BYTES
        fs.write(fh, half[0], 0)  # each half fills the buffer: a store of its own
        fs.write(fh, half[1], len(half[0]))
        fs.fsync(fh)
        read_twice_fetched_once(fs, late, reader, b"a" * 4096)
        fs.release(reader)
        fs.release(fh)
    finally:
        fs.close()


def test_a_store_answered_after_a_newer_open_still_drops_the_other_names_pages(
    volume: Volume, channel: grpc.Channel, late: FirstAnswerLate
) -> None:
    """Our store commits, another node writes, a local open sees that, and only
    then our answer comes: the other name's pages still lack our write."""
    dropped: list[str] = []
    fs = netvol_fs(channel, late, volume.root, attr_ttl=0.3, invalidate_path=dropped.append)

    opened: list[int] = []

    def another_node_writes_and_we_open(attr: pb.Attr) -> None:
        volume.write(attr.ino, 0, b"B")
        dropped.clear()
        opened.append(fs.open("/x", os.O_RDONLY)[0])  # (a release would flush: wait for us)

    try:
        fh = create(fs, "/x")
        fs.link("/x", "/y")
        fs.getattr("/y", None)
        late.meanwhile = another_node_writes_and_we_open
        fs.write(fh, b"o" * writeback.FLUSH_BYTES, 0)  # stored in the background
        for _ in range(1000):  # (an open waits for a flush under way: no flush yet)
            if opened:
                break
            threading.Event().wait(0.01)
        fs.flush(fh)
        assert dropped == ["/y"]
        fs.release(opened[0])
        fs.release(fh)
    finally:
        fs.close()


class GetattrLate(CountsReads):
    """Runs `meanwhile()` once, after a getattr has its answer and before the
    caller takes it in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meanwhile: Callable[[], None] | None = None

    def getattr(self, ino: int) -> pb.Attr:
        attr = super().getattr(ino)
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return attr


def test_an_open_answered_before_our_store_is_taken_in_reads_from_the_cache(
    volume: Volume, channel: grpc.Channel
) -> None:
    """An open fetches the file's attributes; our store, which makes the file
    longer, commits and is taken in before the open is done: the open keeps
    the newer size and version, so reads through it see all of the file and
    are cached, not fetched twice each."""
    late = GetattrLate(channel, volume.id, io_timeout=10)
    fs = netvol_fs(channel, late, volume.root, attr_ttl=0.3)
    try:
        fh = create(fs, "/f")
        fs.write(fh, b"a" * 4096, 0)
        fs.fsync(fh)

        def we_store() -> None:
            fs.write(fh, b"b" * 8192, 0)
            fs.fsync(fh)

        late.meanwhile = we_store
        reader = fs.open("/f", os.O_RDONLY)[0]
        read_twice_fetched_once(fs, late, reader, b"b" * 8192)
        fs.release(reader)
        fs.release(fh)
    finally:
        fs.close()
