"""Write-behind against a model: whatever order and overlap the writes come in,
and however the stores interleave, the bytes stored are the last ones written."""

import itertools
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuse_client import writeback
from fuse_client.remote import WRITE_PIECE, Remote, _cut
from fuse_client.writeback import FileWriter, Told
from proto.netvol.v1 import filesystem_pb2 as pb

WRITES = st.lists(
    st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=40)), min_size=1, max_size=30
)


def _paint(
    writes: Sequence[tuple[int, writeback.Buffer]], size: int = 300
) -> tuple[bytearray, bytearray]:
    content, held = bytearray(size), bytearray(size)
    for offset, data in writes:
        content[offset : offset + len(data)] = data
        held[offset : offset + len(data)] = b"\1" * len(data)
    return content, held


@given(WRITES)
def test_pieces_keep_the_last_bytes_disjoint(writes: list[tuple[int, bytes]]) -> None:
    pieces = writeback._disjoint(writes)
    assert _paint(pieces) == _paint(writes)
    for (a, a_data), (b, _) in itertools.pairwise(pieces):
        assert a + len(a_data) <= b  # disjoint and in order


def test_pieces_no_write_cuts_are_the_written_buffers() -> None:
    writes = [(0, b"a" * 10), (20, b"b" * 5), (10, b"c" * 10)]
    pieces = writeback._disjoint(writes)
    assert [offset for offset, _ in pieces] == [0, 10, 20]
    assert all(any(piece is data for _, data in writes) for _, piece in pieces)


def test_large_writes_are_kept_and_small_ones_joined_up_to_a_bound() -> None:
    extents = writeback._Extents()
    big = b"x" * writeback.KEEP_MIN
    extents.add(0, big, "/f")
    extents.add(len(big), big, "/f")
    assert [data for _, data in extents.items] == [big, big]
    assert extents.items[1][1] is big  # not copied
    small = b"y" * 1024
    at = 2 * len(big)
    for i in range(writeback.JOIN_MAX // len(small) + 1):
        extents.add(at + i * len(small), small, "/f")
    assert [len(data) for _, data in extents.items[2:]] == [writeback.JOIN_MAX, len(small)]
    assert extents.nbytes == extents.end == at + writeback.JOIN_MAX + len(small)


def test_cut_pieces_fit_a_message_and_keep_bytes_uncopied() -> None:
    whole = b"z" * WRITE_PIECE
    large = bytearray(range(256)) * (WRITE_PIECE // 100)
    pieces = list(_cut([(0, whole), (WRITE_PIECE, large)]))
    assert pieces[0][1] is whole
    assert all(type(data) is bytes and len(data) <= WRITE_PIECE for _, data in pieces)
    assert b"".join(data for _, data in pieces[1:]) == large
    assert [offset for offset, _ in pieces[1:]] == [WRITE_PIECE, 2 * WRITE_PIECE, 3 * WRITE_PIECE]


@given(WRITES, WRITES)
def test_overlap_of_spans(a: list[tuple[int, bytes]], b: list[tuple[int, bytes]]) -> None:
    spans_a = writeback._spans([(o, bytearray(d)) for o, d in a])
    spans_b = writeback._spans([(o, bytearray(d)) for o, d in b])
    assert _paint(a)[1] == _paint([(s, b"x" * (e - s)) for s, e in spans_a])[1]
    held_a, held_b = _paint(a)[1], _paint(b)[1]
    shared = any(x and y for x, y in zip(held_a, held_b, strict=True))
    assert writeback._overlap(spans_a, spans_b) == shared


class _SlowServer:
    """Applies each store when it finishes, after a random delay, as a server would."""

    def __init__(self, seed: int) -> None:
        self.content = bytearray(4096)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def write(self, ino: int, extents: list[tuple[int, bytes]]) -> pb.Attr:
        with self._lock:
            delay = self._rng.random() * 0.01
        time.sleep(delay)
        with self._lock:
            for offset, data in extents:
                self.content[offset : offset + len(data)] = data
        return pb.Attr(ino=ino)

    def wait(self, work: "Future[Any]") -> None:
        wait([work])  # a caller nobody kills


# With KEEP_MIN 32, about half the writes are kept as they came and half joined.
@pytest.mark.parametrize("keep_min", [writeback.KEEP_MIN, 32])
def test_overlapping_stores_commit_in_write_order(
    monkeypatch: pytest.MonkeyPatch, keep_min: int
) -> None:
    monkeypatch.setattr(writeback, "KEEP_MIN", keep_min)
    rng = random.Random(7)
    server = _SlowServer(seed=8)
    model = bytearray(4096)
    with ThreadPoolExecutor(max_workers=8) as executor:
        writer = FileWriter(1, cast(Remote, server), executor, on_stored=lambda stored: None)
        monkeypatch.setattr(writeback, "FLUSH_EXTENTS", 5)  # many small stores, most overlapping
        for n in range(600):
            offset = rng.randrange(0, 4096 - 64)
            data = bytes([n % 251 + 1]) * rng.randrange(1, 64)
            writer.write(offset, data, "/f", Told())
            model[offset : offset + len(data)] = data
        writer.flush()
    assert server.content == model


class _HeldServer(_SlowServer):
    """Holds every store until `go` is set."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.go = threading.Event()

    def write(self, ino: int, extents: list[tuple[int, bytes]]) -> pb.Attr:
        self.go.wait()
        return super().write(ino, extents)


def test_the_file_stays_usable_while_a_flush_waits_for_the_server() -> None:
    server = _HeldServer()
    with ThreadPoolExecutor(max_workers=4) as executor:
        writer = FileWriter(1, cast(Remote, server), executor, on_stored=lambda stored: None)
        writer.write(0, b"a" * 10, "/f", Told())
        flushing = threading.Thread(target=writer.flush)
        flushing.start()
        try:
            time.sleep(0.2)  # the flush waits for its store now
            assert flushing.is_alive()

            # Another process's open, write and stat of the file do not wait for it.
            def other_process() -> None:
                writer.write(20, b"b" * 10, "/f", writer.told())
                writer.dirty_end()

            others = threading.Thread(target=other_process)
            others.start()
            others.join(timeout=10)
            assert not others.is_alive()
            assert writer.dirty_end() == 30
        finally:
            server.go.set()
            flushing.join(timeout=10)
        writer.flush()
        assert not writer.dirty
    assert server.content[:30] == b"a" * 10 + bytes(10) + b"b" * 10
