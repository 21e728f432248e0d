"""Unlinks of files are answered at once and applied in batches, in order:
nothing the mount does later passes them, fsync and close cover them, and one
that cannot be applied is reported, not lost."""

import errno
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.mount import Mount, private_mount

UNLINK_CALL = re.compile(r"method=(UnlinkMany|Unlink) ")


def _calls(mount: Mount) -> list[str]:
    return UNLINK_CALL.findall(mount.server.log_path.read_text())


# Names stay known to the mount for the whole test, so its unlinks are deferred.
LONG_TTL = ("--attr-ttl", "60")


@pytest.fixture
def own_mount(tmp_path: Path) -> Iterator[Mount]:
    with private_mount(tmp_path / "server", "data", "1Gi", *LONG_TTL) as mount:
        yield mount


@pytest.fixture
def impatient_mount(tmp_path: Path) -> Iterator[Mount]:
    with private_mount(tmp_path / "server", "data", "1Gi", *LONG_TTL, "--io-timeout", "2") as mount:
        yield mount


def _fill(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    files = [folder / f"f{i:04d}" for i in range(count)]
    for i, path in enumerate(files):
        path.write_bytes(b"%d" % i)
    return files


def test_names_made_again_at_once_hold(own_mount: Mount) -> None:
    # A name the mount had forgotten by its unlink (the default bound is 1 s)
    # would go as a plain Unlink: the long bound keeps every one deferred.
    root = own_mount.path
    files = _fill(root / "d", 300)
    before = len(_calls(own_mount))
    for path in files:
        os.stat(path)  # as rm does: the name is known when it goes
        path.unlink()
    for path in files[::2]:
        path.write_bytes(b"again")  # must not meet the old name on the server
    assert sorted(os.listdir(root / "d")) == sorted(p.name for p in files[::2])
    assert all(p.read_bytes() == b"again" for p in files[::2])
    calls = _calls(own_mount)[before:]
    # Gathered into far fewer calls than unlinks.
    assert calls and set(calls) == {"UnlinkMany"} and len(calls) < len(files) / 2
    for path in files[::2]:
        path.unlink()
    (root / "d").rmdir()  # would fail if an unlink had not reached the server


def test_another_mount_sees_them_after_fsync(fs_root: Path, mounted: Mount, tmp_path: Path) -> None:
    files = _fill(fs_root / "d", 50)
    other = Mount(mounted.server, mounted.volume, tmp_path / "other", "--attr-ttl", "0")
    other.start()
    try:
        seen = other.path / fs_root.name / "d"
        assert len(os.listdir(seen)) == 50
        for path in files[:40]:
            path.unlink()
        fd = os.open(fs_root / "d", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        assert sorted(os.listdir(seen)) == [p.name for p in files[40:]]
    finally:
        other.stop()


def test_a_name_gone_already_is_no_error(own_mount: Mount, tmp_path: Path) -> None:
    root = own_mount.path
    (root / "f").write_bytes(b"x")
    os.stat(root / "f")  # known here
    other = Mount(own_mount.server, own_mount.volume, tmp_path / "other", "--attr-ttl", "0")
    other.start()
    try:
        (other.path / "f").unlink()
    finally:
        other.stop()
    (root / "f").unlink()  # gone on the server already: as asked
    with (root / "g").open("wb") as g:
        g.write(b"y")
        os.fsync(g.fileno())
    assert os.listdir(root) == ["g"]


def test_unlinks_wait_through_a_server_restart(own_mount: Mount) -> None:
    files = _fill(own_mount.path / "d", 100)
    for path in files:
        os.stat(path)
    own_mount.server.kill9()
    for path in files:
        path.unlink()  # answered without the server
    own_mount.server.start()
    with (own_mount.path / "d" / "new").open("wb") as f:
        f.write(b"x")  # its close waits for the unlinks, then is durable
    own_mount.server.kill9()
    own_mount.server.start()
    assert os.listdir(own_mount.path / "d") == ["new"]


def test_an_unlink_that_cannot_be_applied_is_reported(impatient_mount: Mount) -> None:
    root = impatient_mount.path
    (root / "f").write_bytes(b"kept")
    os.stat(root / "f")
    impatient_mount.server.stop()
    (root / "f").unlink()
    time.sleep(3)  # past --io-timeout: the mount gives the unlink up
    impatient_mount.server.start()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as failed:
            os.fsync(fd)
        assert failed.value.errno == errno.EIO
        os.fsync(fd)  # reported once
    finally:
        os.close(fd)
    # The name is still there, and the mount shows it again.
    assert (root / "f").read_bytes() == b"kept"
