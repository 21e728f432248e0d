"""The local blob store: blobs of any length read back as written, whether
they go to disk with direct I/O or through the page cache."""

import os
from pathlib import Path

import pytest

from storage_server.filesystem.blobs import BLOB_MAX, LocalBlobStore

# Around the alignment direct I/O needs, and the largest blob.
LENGTHS = [1, 4095, 4096, 4097, 3 * 4096 + 5, BLOB_MAX - 1, BLOB_MAX]


def _pieces(data: bytes) -> list[memoryview]:
    """The data in three uneven pieces, as a stream's messages bring it."""
    view, third = memoryview(data), len(data) // 3
    return [view[:third], view[third : 2 * third + 1], view[2 * third + 1 :]]


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_blobs_read_back_as_written(tmp_path: Path, direct: bool) -> None:
    store = LocalBlobStore(tmp_path)
    if direct and not store.direct:
        pytest.fail(f"the test directory's file system refuses O_DIRECT: {tmp_path}")
    store.direct = direct
    datas = [os.urandom(length) for length in LENGTHS]
    written = {store.put(_pieces(data)): data for data in datas}
    store.sync(written)

    assert {info.id for info in store.listing()} == set(written)
    for blob_id, data in written.items():
        path = tmp_path / blob_id[:2] / blob_id
        assert path.stat().st_size == len(data)
        assert path.read_bytes() == data
        half = len(data) // 2
        assert store.read(blob_id, half, len(data) - half) == data[half:]
    # Nothing but the blobs: the probe for direct I/O is gone.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_dir()) == []


def test_a_blob_is_its_data_not_a_buffer_reused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    first, second = os.urandom(BLOB_MAX), os.urandom(10)
    first_id = store.put([first])
    second_id = store.put([second])
    assert store.read(first_id, 0, BLOB_MAX) == first
    assert store.read(second_id, 0, 10) == second
