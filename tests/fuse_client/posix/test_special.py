"""Special files: FIFOs, sockets and device nodes (made as root)."""

import os
import stat
from pathlib import Path


def test_mkfifo_makes_a_working_fifo(fs_root: Path) -> None:
    fifo = fs_root / "fifo"
    os.mkfifo(fifo, 0o640)
    st = os.stat(fifo)
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        os.write(writer, b"through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(writer)
        os.close(reader)
    assert os.stat(fifo).st_size == 0


def test_mknod_socket(fs_root: Path) -> None:
    os.mknod(fs_root / "sock", stat.S_IFSOCK | 0o600)
    st = os.lstat(fs_root / "sock")
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_mknod_char_device_keeps_its_numbers(fs_root: Path) -> None:
    dev = os.makedev(1, 3)
    os.mknod(fs_root / "null", stat.S_IFCHR | 0o666, dev)
    st = os.lstat(fs_root / "null")
    assert stat.S_ISCHR(st.st_mode)
    assert st.st_rdev == dev
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)


def test_mknod_block_device_keeps_its_numbers(fs_root: Path) -> None:
    dev = os.makedev(259, 70000)
    os.mknod(fs_root / "blk", stat.S_IFBLK | 0o600, dev)
    st = os.lstat(fs_root / "blk")
    assert stat.S_ISBLK(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (259, 70000)


def test_mknod_regular_file(fs_root: Path) -> None:
    os.mknod(fs_root / "plain", stat.S_IFREG | 0o600)
    st = os.lstat(fs_root / "plain")
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 0
    (fs_root / "plain").write_bytes(b"usable")
    assert (fs_root / "plain").read_bytes() == b"usable"


def test_special_files_can_be_renamed_and_removed(fs_root: Path) -> None:
    os.mkfifo(fs_root / "fifo")
    os.mknod(fs_root / "sock", stat.S_IFSOCK | 0o600)
    os.rename(fs_root / "fifo", fs_root / "fifo2")
    assert stat.S_ISFIFO(os.lstat(fs_root / "fifo2").st_mode)
    os.unlink(fs_root / "fifo2")
    os.unlink(fs_root / "sock")
    assert os.listdir(fs_root) == []
