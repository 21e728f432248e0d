"""The mount raises the kernel's read-ahead for itself, found through mountinfo."""

import os
from pathlib import Path

import pytest

from fuse_client import readahead
from fuse_client.adapter import READ_AHEAD
from tests.harness.mount import Mount

MOUNTINFO = """\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
61 22 0:40 / /mnt/my\\040data rw,nosuid,nodev - fuse.netvol netvol:a rw,user_id=0
62 22 0:41 / /mnt/other rw,nosuid,nodev - fuse.netvol netvol:b rw,user_id=0
63 61 0:42 / /mnt/my\\040data rw,nosuid,nodev - fuse.netvol netvol:c rw,user_id=0
"""


def test_device_is_the_last_mount_at_the_path() -> None:
    # A mount stacked on another at the same path hides it: the later line wins.
    assert readahead.device_of("/mnt/my data", MOUNTINFO) == "0:42"
    assert readahead.device_of("/mnt/other", MOUNTINFO) == "0:41"


def test_unknown_mountpoint_has_no_device() -> None:
    assert readahead.device_of("/mnt/none", MOUNTINFO) is None
    assert readahead.device_of("/mnt/my\\040data", MOUNTINFO) is None


def test_widen_without_sysfs_entry_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    monkeypatch.setattr(readahead, "MOUNTINFO", info)
    monkeypatch.setattr(readahead, "BDI_ROOT", tmp_path / "bdi")
    readahead.widen("/mnt/other", READ_AHEAD)  # logs, does not raise
    assert not (tmp_path / "bdi").exists()


def test_mount_reads_ahead_in_large_requests(mounted: Mount) -> None:
    dev = os.stat(mounted.path).st_dev
    setting = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    assert int(setting.read_text()) == READ_AHEAD // 1024
