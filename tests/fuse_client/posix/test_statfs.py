"""statfs: the file system reports sane sizes."""

import os
from pathlib import Path


def test_statvfs_reports_sane_sizes(fs_root: Path) -> None:
    st = os.statvfs(fs_root)
    assert st.f_bsize > 0
    assert st.f_frsize > 0
    assert st.f_blocks > 0
    assert st.f_blocks >= st.f_bfree >= st.f_bavail >= 0
    assert st.f_files >= st.f_ffree >= 0
    assert st.f_namemax == 255


def test_fstatvfs_matches_statvfs(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"x")
    fd = os.open(fs_root / "f", os.O_RDONLY)
    try:
        by_fd = os.fstatvfs(fd)
    finally:
        os.close(fd)
    by_path = os.statvfs(fs_root / "f")
    assert (by_fd.f_bsize, by_fd.f_blocks, by_fd.f_namemax) == (
        by_path.f_bsize,
        by_path.f_blocks,
        by_path.f_namemax,
    )
