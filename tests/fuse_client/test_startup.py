"""A mount starts without complaints: what it logs is its own, in its own format."""

from pathlib import Path

from tests.harness.mount import Mount


def test_a_started_mount_logs_only_its_own_lines(mounted: Mount, fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"x")
    assert (fs_root / "f").read_bytes() == b"x"
    lines = mounted.log_file.read_text().splitlines()
    assert any("mounting volume shared" in line for line in lines)
    # libfuse writes to stderr, which goes to the same file: a line of its
    # (such as a warning about the thread settings) would not start so.
    assert [line for line in lines if not line.startswith("time=")] == []
