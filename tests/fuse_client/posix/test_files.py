"""Regular files: open flags, reads and writes, and files that are open while
their names change."""

import errno
import os
import stat
import time
from pathlib import Path

import pytest

from tests.fuse_client.posix.errors import fails_with
from tests.harness.mount import Mount
from tests.harness.volume import orphan_names

# Far more than a release takes; only a file left behind waits it out.
RELEASE_SECONDS = 10.0


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)


def test_create_makes_an_empty_regular_file(fs_root: Path) -> None:
    f = fs_root / "f"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o640)
    os.close(fd)
    st = os.stat(f)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 0
    assert st.st_nlink == 1
    assert os.listdir(fs_root) == ["f"]


def test_create_exclusive_on_existing_name_is_eexist(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"keep")
    with fails_with(errno.EEXIST):
        os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    assert f.read_bytes() == b"keep"


def test_create_without_exclusive_opens_the_existing_file(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"keep")
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.read(fd, 10) == b"keep"
    finally:
        os.close(fd)


def test_open_missing_without_create_is_enoent(fs_root: Path) -> None:
    with fails_with(errno.ENOENT):
        os.open(fs_root / "missing", os.O_RDONLY)
    assert os.listdir(fs_root) == []


def test_open_directory_for_writing_is_eisdir(fs_root: Path) -> None:
    (fs_root / "d").mkdir()
    with fails_with(errno.EISDIR):
        os.open(fs_root / "d", os.O_WRONLY)


def test_o_directory_on_a_file_is_enotdir(fs_root: Path) -> None:
    _write_file(fs_root / "f", b"")
    with fails_with(errno.ENOTDIR):
        os.open(fs_root / "f", os.O_RDONLY | os.O_DIRECTORY)


def test_write_on_read_only_fd_is_ebadf(fs_root: Path) -> None:
    _write_file(fs_root / "f", b"data")
    fd = os.open(fs_root / "f", os.O_RDONLY)
    try:
        with fails_with(errno.EBADF):
            os.write(fd, b"x")
    finally:
        os.close(fd)
    assert (fs_root / "f").read_bytes() == b"data"


def test_o_trunc_empties_the_file(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"x" * 100)
    fd = os.open(f, os.O_RDWR | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        assert os.read(fd, 100) == b""
    finally:
        os.close(fd)
    assert os.stat(f).st_size == 0


def test_o_append_writes_at_end_even_after_seek(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"0123456789")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"abc")
        assert os.lseek(fd, 0, os.SEEK_CUR) == 13
        os.lseek(fd, 2, os.SEEK_SET)
        os.write(fd, b"de")
    finally:
        os.close(fd)
    assert f.read_bytes() == b"0123456789abcde"


def test_o_append_sees_growth_by_another_fd(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"")
    appender = os.open(f, os.O_WRONLY | os.O_APPEND)
    other = os.open(f, os.O_WRONLY)
    try:
        os.write(appender, b"one")
        os.pwrite(other, b"two-two", 3)
        os.write(appender, b"three")
    finally:
        os.close(appender)
        os.close(other)
    assert f.read_bytes() == b"onetwo-twothree"


def test_pwrite_with_o_append_appends_on_linux(fs_root: Path) -> None:
    # pwrite(2), BUGS: on Linux, O_APPEND makes pwrite append whatever the offset.
    f = fs_root / "f"
    _write_file(f, b"0123")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.pwrite(fd, b"ab", 0)
    finally:
        os.close(fd)
    assert f.read_bytes() == b"0123ab"


def test_read_write_and_offsets(fs_root: Path) -> None:
    fd = os.open(fs_root / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.write(fd, b"hello ") == 6
        assert os.write(fd, b"world") == 5
        assert os.lseek(fd, 0, os.SEEK_CUR) == 11
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 5) == b"hello"
        assert os.read(fd, 100) == b" world"
    finally:
        os.close(fd)


def test_pread_and_pwrite_leave_the_offset_alone(fs_root: Path) -> None:
    fd = os.open(fs_root / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"hello world")
        os.lseek(fd, 3, os.SEEK_SET)
        assert os.pread(fd, 5, 6) == b"world"
        assert os.pwrite(fd, b"WORLD", 6) == 5
        assert os.lseek(fd, 0, os.SEEK_CUR) == 3
        assert os.read(fd, 100) == b"lo WORLD"
    finally:
        os.close(fd)


def test_reads_are_short_at_eof(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"0123456789")
    fd = os.open(f, os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"0123456789"
        assert os.read(fd, 100) == b""
        assert os.pread(fd, 100, 8) == b"89"
        assert os.pread(fd, 100, 10) == b""
        assert os.pread(fd, 100, 1000) == b""
    finally:
        os.close(fd)


def test_reader_sees_each_write_of_another_fd_before_close(fs_root: Path) -> None:
    f = fs_root / "f"
    writer = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    reader = os.open(f, os.O_RDONLY)
    try:
        for i in range(50):
            chunk = bytes([i]) * 1000
            os.write(writer, chunk)
            assert os.fstat(reader).st_size == (i + 1) * 1000
            assert os.read(reader, 5000) == chunk
        os.pwrite(writer, b"rewritten", 10)
        assert os.pread(reader, 9, 10) == b"rewritten"
    finally:
        os.close(writer)
        os.close(reader)


def test_writes_are_visible_to_another_fd_after_close(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"")
    opened_before = os.open(f, os.O_RDONLY)
    try:
        writer = os.open(f, os.O_WRONLY)
        os.write(writer, b"payload" * 1000)
        os.close(writer)
        assert os.read(opened_before, 10**6) == b"payload" * 1000
        opened_after = os.open(f, os.O_RDONLY)
        try:
            assert os.read(opened_after, 10**6) == b"payload" * 1000
        finally:
            os.close(opened_after)
    finally:
        os.close(opened_before)


def test_fsync_and_fdatasync_keep_the_data(fs_root: Path) -> None:
    f = fs_root / "f"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"durable")
        os.fsync(fd)
        assert f.read_bytes() == b"durable"
        os.write(fd, b" too")
        os.fdatasync(fd)
        assert f.read_bytes() == b"durable too"
    finally:
        os.close(fd)
    ro = os.open(f, os.O_RDONLY)
    try:
        os.fsync(ro)
    finally:
        os.close(ro)


def test_fsync_on_a_directory(fs_root: Path) -> None:
    _write_file(fs_root / "f", b"x")
    fd = os.open(fs_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    assert os.listdir(fs_root) == ["f"]


def test_unlinked_open_file_stays_usable(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"still here")
    fd = os.open(f, os.O_RDWR)
    try:
        os.unlink(f)
        assert os.listdir(fs_root) == []
        with fails_with(errno.ENOENT):
            os.stat(f)
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"still here"
        os.pwrite(fd, b"HERE", 6)
        assert os.pread(fd, 100, 0) == b"still HERE"
        assert os.fstat(fd).st_size == 10
    finally:
        os.close(fd)
    assert os.listdir(fs_root) == []


def _orphans_left(mounted: Mount) -> list[str]:
    """What the server still keeps of files unlinked while open, after the
    mount's releases are through: the kernel sends them after close() returned."""
    deadline = time.monotonic() + RELEASE_SECONDS
    while True:
        left = orphan_names(mounted.server, mounted.volume)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_open_hard_links_unlinked_one_by_one_are_gone_at_the_last_close(
    fs_root: Path, mounted: Mount
) -> None:
    a, b = fs_root / "a", fs_root / "b"
    _write_file(a, b"data")
    os.link(a, b)
    fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY)
    try:
        os.unlink(a)
        assert os.stat(b).st_nlink == os.fstat(fa).st_nlink == 1
        os.unlink(b)
        assert os.listdir(fs_root) == []
        assert os.fstat(fa).st_nlink == os.fstat(fb).st_nlink == 0
        assert os.pread(fb, 10, 0) == b"data"
    finally:
        os.close(fa)
        os.close(fb)
    assert os.listdir(fs_root) == []
    assert _orphans_left(mounted) == []


def test_an_open_file_unlinked_in_a_directory_renamed_after_goes_at_its_close(
    fs_root: Path, mounted: Mount
) -> None:
    (fs_root / "d").mkdir()
    _write_file(fs_root / "d" / "f", b"x" * 100_000)
    fd = os.open(fs_root / "d" / "f", os.O_RDONLY)
    try:
        os.unlink(fs_root / "d" / "f")
        os.rename(fs_root / "d", fs_root / "e")
        assert os.pread(fd, 4, 0) == b"xxxx"
    finally:
        os.close(fd)
    assert _orphans_left(mounted) == []


@pytest.mark.parametrize("name", [".fuse_hidden-mine", ".fuse_hidden00000002000000a1"])
def test_a_name_like_the_hidden_ones_is_an_ordinary_name(fs_root: Path, name: str) -> None:
    _write_file(fs_root / "f", b"mine")
    os.rename(fs_root / "f", fs_root / name)
    assert os.listdir(fs_root) == [name]
    assert (fs_root / name).read_bytes() == b"mine"


def test_new_file_under_unlinked_name_is_separate(fs_root: Path) -> None:
    f = fs_root / "f"
    _write_file(f, b"old")
    fd = os.open(f, os.O_RDONLY)
    try:
        os.unlink(f)
        _write_file(f, b"new contents")
        assert os.pread(fd, 100, 0) == b"old"
        assert f.read_bytes() == b"new contents"
        assert os.fstat(fd).st_ino != os.stat(f).st_ino
    finally:
        os.close(fd)


def test_rename_over_an_open_file(fs_root: Path) -> None:
    old, new = fs_root / "target", fs_root / "incoming"
    _write_file(old, b"old contents")
    _write_file(new, b"new")
    fd = os.open(old, os.O_RDONLY)
    try:
        os.rename(new, old)
        assert os.pread(fd, 100, 0) == b"old contents"
        assert os.fstat(fd).st_nlink == 0
        assert old.read_bytes() == b"new"
        assert os.listdir(fs_root) == ["target"]
    finally:
        os.close(fd)
    assert old.read_bytes() == b"new"
