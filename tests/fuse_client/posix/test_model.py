"""Random sequences of file operations give the same results on the file system under
test as on a local directory: return values, errnos, and the final tree.

Each hypothesis example works in a fresh subdirectory of `fs_root` and a fresh local
reference directory, and removes both at its end. Names come from a tiny alphabet so
operations collide: renames over existing entries, links to missing files, rmdir of
non-empty directories, paths through files and symlinks.
"""

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from tests.fuse_client.posix.syscalls import RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2

NAMES = ("a", "b", "c")
# Mostly top-level names, so that most operations find what they look for.
PATHS = [*NAMES * 3, *(f"{x}/{y}" for x in NAMES for y in NAMES), "a/a/a", "a/b/c", "b/c/a"]
paths = st.sampled_from(PATHS)
dirs = st.just(".") | paths
offsets = st.sampled_from([0, 1, 4095, 4096, 4097, 65536, 200_000]) | st.integers(0, 10_000)
payloads = st.binary(max_size=300)
rename_flags = st.sampled_from([0, RENAME_NOREPLACE, RENAME_EXCHANGE])

Op = Callable[[Path], Any]
Outcome = tuple[str, Any]


def _outcome(op: Op, root: Path) -> Outcome:
    try:
        return ("ok", op(root))
    except OSError as exc:
        return ("error", errno.errorcode.get(exc.errno or 0, exc.errno))


def _create(path: str, exclusive: bool) -> Op:
    def op(root: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
        os.close(os.open(root / path, flags, 0o644))

    return op


def _write(path: str, offset: int, data: bytes, append: bool) -> Op:
    def op(root: Path) -> tuple[int, int]:
        fd = os.open(root / path, os.O_WRONLY | (os.O_APPEND if append else 0))
        try:
            written = os.write(fd, data) if append else os.pwrite(fd, data, offset)
            return written, os.fstat(fd).st_size
        finally:
            os.close(fd)

    return op


def _read(path: str, offset: int, length: int) -> Op:
    def op(root: Path) -> bytes:
        fd = os.open(root / path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    return op


def _stat(path: str, follow: bool) -> Op:
    def op(root: Path) -> tuple[int, int, int, int | None]:
        st = os.stat(root / path, follow_symlinks=follow)
        size = None if stat.S_ISDIR(st.st_mode) else st.st_size
        return stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, size

    return op


def _tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below root: kind, mode, link count, hard-link group, and contents."""
    tree: dict[str, tuple[Any, ...]] = {}
    groups: dict[int, int] = {}

    def visit(directory: Path, prefix: str) -> None:
        for name in sorted(os.listdir(directory)):
            path, rel = directory / name, prefix + name
            st = os.lstat(path)
            group = groups.setdefault(st.st_ino, len(groups))
            common = (stat.S_IMODE(st.st_mode), st.st_nlink, group)
            if stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", *common)
                visit(path, rel + "/")
            elif stat.S_ISLNK(st.st_mode):
                tree[rel] = ("symlink", *common, os.readlink(path))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                tree[rel] = ("file", *common, st.st_size, digest)

    visit(root, "")
    return tree


class SameAsLocal(RuleBasedStateMachine):
    """Apply each operation to both directories; the outcomes must be equal."""

    def __init__(self, under_test: Path, reference: Path) -> None:
        super().__init__()
        self.under_test = Path(tempfile.mkdtemp(dir=under_test))
        self.reference = Path(tempfile.mkdtemp(dir=reference))
        self.failed = False

    def check(self, description: str, op: Op) -> None:
        try:
            expected = _outcome(op, self.reference)
            got = _outcome(op, self.under_test)
            assert got == expected, f"{description}: got {got!r}, local gives {expected!r}"
        except BaseException:
            self.failed = True
            raise

    @initialize(data=payloads)
    def populate(self, data: bytes) -> None:
        def op(root: Path) -> None:
            os.mkdir(root / "a")
            (root / "b").write_bytes(data)
            (root / "a" / "c").write_bytes(data[::-1])

        self.check("populate", op)

    @rule(path=paths, exclusive=st.booleans())
    def create(self, path: str, exclusive: bool) -> None:
        self.check(f"create {path} exclusive={exclusive}", _create(path, exclusive))

    @rule(path=paths, offset=offsets, data=payloads, append=st.booleans())
    def write(self, path: str, offset: int, data: bytes, append: bool) -> None:
        what = f"write {len(data)} bytes to {path} at {'end' if append else offset}"
        self.check(what, _write(path, offset, data, append))

    @rule(path=paths, size=offsets)
    def truncate(self, path: str, size: int) -> None:
        self.check(f"truncate {path} to {size}", lambda root: os.truncate(root / path, size))

    @rule(path=paths, offset=offsets, length=st.sampled_from([1, 100, 5000, 300_000]))
    def read(self, path: str, offset: int, length: int) -> None:
        self.check(f"read {length} from {path} at {offset}", _read(path, offset, length))

    @rule(path=paths)
    def mkdir(self, path: str) -> None:
        self.check(f"mkdir {path}", lambda root: os.mkdir(root / path))

    @rule(path=paths)
    def rmdir(self, path: str) -> None:
        self.check(f"rmdir {path}", lambda root: os.rmdir(root / path))

    @rule(path=paths)
    def unlink(self, path: str) -> None:
        self.check(f"unlink {path}", lambda root: os.unlink(root / path))

    @rule(src=paths, dst=paths, flags=rename_flags)
    def rename(self, src: str, dst: str, flags: int) -> None:
        def op(root: Path) -> None:
            if flags:
                renameat2(root / src, root / dst, flags)
            else:
                os.rename(root / src, root / dst)

        self.check(f"rename {src} {dst} flags={flags}", op)

    @rule(src=paths, dst=paths)
    def link(self, src: str, dst: str) -> None:
        self.check(f"link {src} {dst}", lambda root: os.link(root / src, root / dst))

    @rule(pointee=paths, path=paths)
    def symlink(self, pointee: str, path: str) -> None:
        self.check(f"symlink {path} -> {pointee}", lambda root: os.symlink(pointee, root / path))

    @rule(path=paths)
    def readlink(self, path: str) -> None:
        self.check(f"readlink {path}", lambda root: os.readlink(root / path))

    @rule(path=dirs)
    def listdir(self, path: str) -> None:
        self.check(f"listdir {path}", lambda root: sorted(os.listdir(root / path)))

    @rule(path=paths, follow=st.booleans())
    def stat_entry(self, path: str, follow: bool) -> None:
        self.check(f"stat {path} follow={follow}", _stat(path, follow))

    def teardown(self) -> None:
        try:
            if not self.failed:
                assert _tree(self.under_test) == _tree(self.reference), "final trees differ"
        finally:
            shutil.rmtree(self.under_test)
            shutil.rmtree(self.reference)


def _working_in(under_test: Path, reference: Path) -> type[SameAsLocal]:
    """The machine with its two base directories bound: hypothesis wants a class."""

    class Bound(SameAsLocal):
        def __init__(self) -> None:
            super().__init__(under_test, reference)

    return Bound


def test_random_operations_match_a_local_directory(
    fs_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reference = tmp_path_factory.mktemp("posix-reference")
    run_state_machine_as_test(
        _working_in(fs_root, reference),
        settings=settings(max_examples=60, stateful_step_count=30, deadline=None, database=None),
    )
    assert os.listdir(fs_root) == []
    assert os.listdir(reference) == []
