"""Directory listings of NetvolFS against a real server, without FUSE: readdir
pages lazily through offsets the way the kernel asks, answers from a kept
complete listing within the bound (and after it, once the server shows the
directory unchanged), and never from one a change made stale."""

import errno
import os
import stat
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fuse_client import listing as listing_module
from fuse_client import orphans
from fuse_client.filesystem import NetvolFS
from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server.client import connect
from tests.harness.inprocess import netvol_fs
from tests.harness.server import StorageServer
from tests.harness.volume import Volume

PAGE = 7
TTL = 0.3


class CountingRemote(Remote):
    """A Remote that counts its ReadDir, GetAttr and Lookup calls."""

    pages = 0
    getattrs = 0
    looked_up_in: list[int]  # the parent of each Lookup

    def lookup(self, parent: int, name: str) -> pb.Attr:
        self.looked_up_in.append(parent)
        return super().lookup(parent, name)

    def readdir_page(self, ino: int, after: str, limit: int = 0) -> pb.ReadDirResponse:
        self.pages += 1
        return super().readdir_page(ino, after, limit)

    def getattr(self, ino: int) -> pb.Attr:
        self.getattrs += 1
        return super().getattr(ino)


@pytest.fixture
def volume(fs_server: StorageServer) -> Volume:
    return Volume(fs_server)


@pytest.fixture
def fs(volume: Volume, monkeypatch: pytest.MonkeyPatch) -> Iterator[NetvolFS]:
    monkeypatch.setattr(listing_module, "LISTING_PAGE", PAGE)
    channel = connect(volume.server.client_settings())
    remote = CountingRemote(channel, volume.id, io_timeout=10)
    remote.looked_up_in = []
    netvol = netvol_fs(channel, remote, volume.root, attr_ttl=TTL)
    try:
        yield netvol
    finally:
        netvol.close()
        channel.close()


def pages(fs: NetvolFS) -> int:
    remote: Any = fs._remote
    return int(remote.pages)


def getattrs(fs: NetvolFS) -> int:
    remote: Any = fs._remote
    return int(remote.getattrs)


def lookups(fs: NetvolFS, parent: int) -> int:
    remote: Any = fs._remote
    return int(remote.looked_up_in.count(parent))


def read_all(fs: NetvolFS, fh: int, take: int = 5, offset: int = 0) -> list[str]:
    """As the kernel reads: up to `take` entries per call, then on from the last one's offset."""
    names: list[str] = []
    while True:
        items = fs.readdir(fh, offset)
        assert len(items) <= PAGE + 2
        if not items:
            return names
        taken = items[:take]
        names += [name for name, _ino, _mode in taken]
        offset += len(taken)


def make_files(volume: Volume, directory: int, count: int) -> list[str]:
    names = [f"f{i:03d}" for i in range(count)]
    for name in names:
        volume.mknod(name, parent=directory)
    return names


def test_readdir_pages_lazily_through_a_large_directory(fs: NetvolFS, volume: Volume) -> None:
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, 4 * PAGE + 3)
    fh = fs.opendir("/d")

    first = fs.readdir(fh, 0)
    assert [name for name, _, _ in first[:2]] == [".", ".."]
    assert first[0][1] == directory and first[1][1] == volume.root
    assert all(stat.S_ISDIR(mode) for _, _, mode in first[:2])
    assert pages(fs) <= 2  # what the kernel asked for so far, and the next page
    assert read_all(fs, fh, take=3) == [".", "..", *names]  # a new pass, from offset 0
    assert pages(fs) <= 2 + 5
    kinds = {name: mode for name, _, mode in fs.readdir(fh, 2)}
    assert all(stat.S_ISREG(mode) for mode in kinds.values())
    fs.releasedir(fh)


def test_readdir_from_an_offset_of_an_earlier_pass(fs: NetvolFS, volume: Volume) -> None:
    """seekdir to a telldir value: a new handle continues at the same entry."""
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, 3 * PAGE)
    fh = fs.opendir("/d")
    assert read_all(fs, fh, offset=2 + 2 * PAGE - 1) == names[2 * PAGE - 1 :]
    assert read_all(fs, fh, offset=5) == names[3:]  # backwards: a new pass
    fs.releasedir(fh)


def test_a_second_listing_within_the_bound_comes_from_the_cache(
    fs: NetvolFS, volume: Volume
) -> None:
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, 2 * PAGE)
    fh = fs.opendir("/d")
    assert read_all(fs, fh) == [".", "..", *names]
    asked = pages(fs)
    assert read_all(fs, fs.opendir("/d"), take=100) == [".", "..", *names]
    assert pages(fs) == asked
    # Another node's file shows once the bound has passed.
    volume.mknod("late", parent=directory)
    time.sleep(TTL + 0.05)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names, "late"]
    assert pages(fs) > asked


def test_past_the_bound_an_unchanged_directory_is_checked_not_read_again(
    fs: NetvolFS, volume: Volume
) -> None:
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, 2 * PAGE)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    asked, checked = pages(fs), getattrs(fs)
    for _ in range(2):
        time.sleep(TTL + 0.05)
        assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    assert pages(fs) == asked
    assert getattrs(fs) == checked + 2  # one check per pass past the bound
    # Found unchanged, it answers unchecked for the bound again.
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    assert getattrs(fs) == checked + 2
    # Another node's change: the check fails and the listing is read again.
    volume.unlink("f003", parent=directory)
    time.sleep(TTL + 0.05)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names[:3], *names[4:]]
    assert pages(fs) > asked


def test_a_listing_read_across_another_nodes_change_is_not_checked_again(
    fs: NetvolFS, volume: Volume
) -> None:
    """Its last page shows the directory's new times, but an earlier page missed the change."""
    directory = volume.mkdir("d").ino
    make_files(volume, directory, 3 * PAGE)
    fh = fs.opendir("/d")
    first = fs.readdir(fh, 0)
    volume.mknod("a-new-first-name", parent=directory)
    assert "a-new-first-name" not in read_all(fs, fh, offset=len(first))
    time.sleep(TTL + 0.05)
    assert "a-new-first-name" in read_all(fs, fs.opendir("/d"))


def test_our_own_change_shows_in_the_next_listing(fs: NetvolFS, volume: Volume) -> None:
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, PAGE)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    fs.mknod("/d/new", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    fs.unlink("/d/f000")
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names[1:], "new"]


def test_names_we_add_keep_the_listing_and_its_check(fs: NetvolFS, volume: Volume) -> None:
    """Files made one after another in a listed directory: no listing read
    again, and a miss past the bound costs one GetAttr, not a Lookup."""
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, 2 * PAGE)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    asked, checked, looked_up = pages(fs), getattrs(fs), lookups(fs, directory)
    fs.mknod("/d/new", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    fs.mkdir("/d/sub", 0o755, 0, 0)
    fs.link("/d/f000", "/d/linked")
    added = ["new", "sub", "linked"]
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names, *added]
    time.sleep(TTL + 0.05)
    with pytest.raises(FileNotFoundError):
        fs.getattr("/d/missing", None)
    assert getattrs(fs) == checked + 1
    fs.mknod("/d/newer", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    with pytest.raises(FileNotFoundError):
        fs.getattr("/d/missing-too", None)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names, *added, "newer"]
    assert (pages(fs), getattrs(fs), lookups(fs, directory)) == (asked, checked + 1, looked_up)
    assert {entry.name for entry in volume.readdir(directory).entries} == {*names, *added, "newer"}


def test_a_name_we_add_after_another_nodes_change_drops_the_listing(
    fs: NetvolFS, volume: Volume
) -> None:
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, PAGE)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    asked = pages(fs)
    volume.mknod("theirs", parent=directory)
    fs.mknod("/d/ours", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    assert fs.meta.listing(directory) is None
    assert sorted(read_all(fs, fs.opendir("/d"))) == sorted([".", "..", *names, "theirs", "ours"])
    assert pages(fs) > asked


def test_our_renames_keep_the_listing(fs: NetvolFS, volume: Volume) -> None:
    """Writing a file under a temporary name and renaming it over the old one,
    as editors and package managers do, reads no listing again."""
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, PAGE)
    assert read_all(fs, fs.opendir("/d")) == [".", "..", *names]
    asked = pages(fs)
    fs.mknod("/d/f000.tmp", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    fs.rename("/d/f000.tmp", "/d/f000", 0)
    fs.rename("/d/f001", "/d/renamed", 0)
    expected = [".", "..", *names[2:], "f000", "renamed"]
    assert read_all(fs, fs.opendir("/d")) == expected
    assert pages(fs) == asked
    assert {e.name for e in volume.readdir(directory).entries} == set(expected[2:])


def test_a_rename_between_two_names_of_one_file_leaves_both(fs: NetvolFS, volume: Volume) -> None:
    volume.mkdir("d")
    fs.mknod("/d/a", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    fs.link("/d/a", "/d/b")
    fs.rename("/d/a", "/d/b", 0)
    assert fs.getattr("/d/a", None)["st_nlink"] == fs.getattr("/d/b", None)["st_nlink"] == 2
    assert sorted(read_all(fs, fs.opendir("/d"))) == [".", "..", "a", "b"]


def items_of(fs: NetvolFS, path: str) -> dict[str, tuple[int, int]]:
    fh = fs.opendir(path)
    try:
        return {name: (ino, mode) for name, ino, mode in fs.readdir(fh, 0)[2:]}
    finally:
        fs.releasedir(fh)


def test_a_rename_puts_what_the_server_moved_in_the_new_listing(
    fs: NetvolFS, volume: Volume
) -> None:
    """Another node replaced the name by a directory before our rename, while we
    still had the old file cached: the listing that takes the new name must hold
    the directory, also once it is checked past the bound."""
    one, two = volume.mkdir("one").ino, volume.mkdir("two").ino
    file = volume.mknod("a", parent=one).ino
    assert items_of(fs, "/one") == {"a": (file, stat.S_IFREG | 0o644)}
    assert items_of(fs, "/two") == {}
    volume.unlink("a", parent=one)
    directory = volume.mkdir("a", parent=one).ino
    fs.rename("/one/a", "/two/b", 0)
    assert volume.lookup("b", parent=two).ino == directory
    moved = {"b": (directory, stat.S_IFDIR | 0o755)}
    assert items_of(fs, "/two") == moved
    assert fs.getattr("/two/b", None)["st_ino"] == directory
    time.sleep(TTL * 1.5)
    assert items_of(fs, "/two") == moved


def test_a_name_that_turns_out_to_exist_is_asked_for_again(fs: NetvolFS, volume: Volume) -> None:
    """Our create fails because another node made the name meanwhile: the kept
    listing that said it was absent must not go on saying so."""
    directory = volume.mkdir("d").ino
    assert items_of(fs, "/d") == {}
    theirs = volume.mknod("late", parent=directory).ino
    with pytest.raises(OSError) as info:
        fs.create("/d/late", 0o644, 0, 0)
    assert info.value.errno == errno.EEXIST
    assert fs.getattr("/d/late", None)["st_ino"] == theirs
    assert items_of(fs, "/d") == {"late": (theirs, stat.S_IFREG | 0o644)}


def test_a_listing_read_across_our_change_is_not_kept(fs: NetvolFS, volume: Volume) -> None:
    directory = volume.mkdir("d").ino
    make_files(volume, directory, 3 * PAGE)
    fh = fs.opendir("/d")
    first = fs.readdir(fh, 0)  # the first page only
    fs.mknod("/d/a-new-first-name", stat.S_IFREG | 0o644, 0, 0, rdev=0)
    rest = read_all(fs, fh, offset=len(first))  # this pass goes on past the change
    assert "a-new-first-name" not in rest
    assert fs.meta.listing(directory) is None
    assert "a-new-first-name" in read_all(fs, fs.opendir("/d"))


def test_a_listing_too_large_to_keep_is_held_a_page_at_a_time(
    fs: NetvolFS, volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "KEEP_LISTING_MAX", 2 * PAGE)
    directory = volume.mkdir("d").ino
    names = make_files(volume, directory, 3 * PAGE)
    fh = fs.opendir("/d")
    assert read_all(fs, fh) == [".", "..", *names]
    assert fs.meta.listing(directory) is None
    listing = fs._dirs[fh].listing
    assert listing is not None and listing.seen is None and len(listing.page) <= PAGE
    # Still complete: a missing name needs no round trip.
    with pytest.raises(FileNotFoundError):
        fs.getattr("/d/missing", None)


def test_the_root_listing_hides_the_orphans_directory(fs: NetvolFS, volume: Volume) -> None:
    volume.mkdir(orphans.NAME)
    volume.mkdir("visible")
    assert read_all(fs, fs.opendir("/")) == [".", "..", "visible"]
    assert read_all(fs, fs.opendir("/")) == [".", "..", "visible"]  # from the cache


def test_pages_are_not_fetched_once_the_mount_is_gone(fs: NetvolFS, volume: Volume) -> None:
    directory = volume.mkdir("d").ino
    fs.unmounted()
    with pytest.raises(OSError) as failed:
        fs._remote.readdir_page(directory, "")
    assert failed.value.errno == errno.ESHUTDOWN


def test_an_open_finds_the_file_another_node_put_under_the_name(volume: Volume) -> None:
    """Another node replaced the file (write a temporary, rename it over) while
    we still had the name cached: the open is of the new file, as close-to-open
    promises, and the kernel is told to drop what it holds for the path."""
    dropped: list[str] = []
    channel = connect(volume.server.client_settings())
    remote = Remote(channel, volume.id, 10)
    fs = netvol_fs(channel, remote, volume.root, 60.0, invalidate_path=dropped.append)
    try:
        volume.create("f", b"old")
        fs.release(fs.open("/f", os.O_RDONLY)[0])
        volume.create("tmp", b"new")
        volume.rename("tmp", "f")
        fh, keep = fs.open("/f", os.O_RDONLY)
        assert (fs.read(fh, 10, 0), keep) == (b"new", False)
        assert "/f" in dropped
        fs.release(fh)
    finally:
        fs.close()
        channel.close()
