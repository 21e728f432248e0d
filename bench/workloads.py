"""The workloads: sequential, random 4 KiB and small-file I/O, timed with plain syscalls.

Every target gets the same bytes and the same offsets (one seeded RNG per workload),
and every 4 KiB page written is distinct, so neither compression nor deduplication
can flatter a target.
"""

import os
import random
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
PAGE = 4096
MB = 10**6
_STAMP = struct.Struct("<QQ")


@dataclass(frozen=True)
class Plan:
    size: int  # the sequential file
    rand_size: int  # the file random I/O runs on
    rand_ops: int
    rand_seconds: float  # random I/O stops at rand_ops or this, whichever is first
    files: int
    file_size: int
    seed: int

    @property
    def footprint(self) -> int:
        """The most the workloads keep on a target at once, plus the small files."""
        return max(self.size, self.rand_size) + self.files * max(self.file_size, PAGE)


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    unit: str  # "MB/s" (10^6 bytes) or "ops/s"


WORKLOADS = [
    Workload("seq_write", "seq write", "MB/s"),
    Workload("seq_read_cold", "seq read cold", "MB/s"),
    Workload("seq_read_warm", "seq read warm", "MB/s"),
    Workload("rand_read", "rand read 4K", "ops/s"),
    Workload("rand_write", "rand write 4K", "ops/s"),
    Workload("create", "create files", "ops/s"),
    Workload("stat", "stat files", "ops/s"),
    Workload("list", "list files", "ops/s"),
    Workload("delete", "delete files", "ops/s"),
]


@dataclass(frozen=True)
class Result:
    key: str
    value: float  # MB/s or ops/s, as the workload's unit says
    seconds: float
    amount: int  # bytes moved or operations done


def _rate(key: str, amount: int, seconds: float) -> Result:
    unit = next(w.unit for w in WORKLOADS if w.key == key)
    seconds = max(seconds, 1e-9)
    value = amount / MB / seconds if unit == "MB/s" else amount / seconds
    return Result(key, value, seconds, amount)


def _pages(rng: random.Random, size: int) -> bytearray:
    return bytearray(rng.randbytes(size))


def _stamp(buf: bytearray, tag: int, length: int) -> None:
    for offset in range(0, length, PAGE):
        _STAMP.pack_into(buf, offset, tag, offset)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def write_file(path: Path, size: int, rng: random.Random) -> None:
    """Write `size` bytes of distinct pages in 1 MiB chunks, then fsync."""
    buf = _pages(rng, CHUNK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for index, start in enumerate(range(0, size, CHUNK)):
            length = min(CHUNK, size - start)
            _stamp(buf, index, length)
            _write_all(fd, memoryview(buf)[:length])
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> int:
    total = 0
    buf = bytearray(CHUNK)
    fd = os.open(path, os.O_RDONLY)
    try:
        while n := os.readv(fd, [buf]):
            total += n
    finally:
        os.close(fd)
    return total


def sequential(root: Path, plan: Plan, cold: Callable[[], None]) -> Iterator[Result]:
    path = root / "seq.bin"
    start = time.perf_counter()
    write_file(path, plan.size, random.Random(plan.seed))
    yield _rate("seq_write", plan.size, time.perf_counter() - start)
    for key in ("seq_read_cold", "seq_read_warm"):
        if key == "seq_read_cold":
            cold()
        start = time.perf_counter()
        got = read_file(path)
        elapsed = time.perf_counter() - start
        if got != plan.size:
            raise RuntimeError(f"{key}: read {got} bytes of {plan.size}")
        yield _rate(key, got, elapsed)
    path.unlink()


def _offsets(plan: Plan) -> Iterator[int]:
    rng = random.Random(plan.seed)
    blocks = plan.rand_size // PAGE
    while True:
        yield rng.randrange(blocks) * PAGE


def random_io(root: Path, plan: Plan, cold: Callable[[], None]) -> Iterator[Result]:
    """Random reads start cold: a warm page cache would only measure memory."""
    path = root / "rand.bin"
    write_file(path, plan.rand_size, random.Random(plan.seed + 1))
    cold()
    fd = os.open(path, os.O_RDWR)
    try:
        ops, offsets = 0, _offsets(plan)
        start = time.perf_counter()
        deadline = start + plan.rand_seconds
        while ops < plan.rand_ops and time.perf_counter() < deadline:
            if len(os.pread(fd, PAGE, next(offsets))) != PAGE:
                raise RuntimeError("rand_read: short read")
            ops += 1
        yield _rate("rand_read", ops, time.perf_counter() - start)

        buf = _pages(random.Random(plan.seed + 2), PAGE)
        ops, offsets = 0, _offsets(plan)
        start = time.perf_counter()
        deadline = start + plan.rand_seconds
        while ops < plan.rand_ops and time.perf_counter() < deadline:
            _STAMP.pack_into(buf, 0, ops, 1)
            if os.pwrite(fd, buf, next(offsets)) != PAGE:
                raise RuntimeError("rand_write: short write")
            ops += 1
        # The writes are not done until they are durable: fsync is part of the time.
        os.fsync(fd)
        yield _rate("rand_write", ops, time.perf_counter() - start)
    finally:
        os.close(fd)
    path.unlink()


def small_files(root: Path, plan: Plan) -> Iterator[Result]:
    folder = root / "files"
    folder.mkdir()
    names = [os.path.join(folder, f"f{i:06d}") for i in range(plan.files)]
    buf = _pages(random.Random(plan.seed + 3), max(plan.file_size, PAGE))
    data = memoryview(buf)[: plan.file_size]

    start = time.perf_counter()
    for i, name in enumerate(names):
        _STAMP.pack_into(buf, 0, i, 2)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    yield _rate("create", plan.files, time.perf_counter() - start)

    # A shuffled order, so that no target profits from lookups in creation order.
    shuffled = names[:]
    random.Random(plan.seed).shuffle(shuffled)
    start = time.perf_counter()
    for name in shuffled:
        os.stat(name)
    yield _rate("stat", plan.files, time.perf_counter() - start)

    start = time.perf_counter()
    with os.scandir(folder) as entries:
        listed = sum(1 for _ in entries)
    elapsed = time.perf_counter() - start
    if listed != plan.files:
        raise RuntimeError(f"list: found {listed} entries, expected {plan.files}")
    yield _rate("list", listed, elapsed)

    start = time.perf_counter()
    for name in shuffled:
        os.unlink(name)
    yield _rate("delete", plan.files, time.perf_counter() - start)
    folder.rmdir()


def run_all(root: Path, plan: Plan, cold: Callable[[], None]) -> Iterator[Result]:
    """Every workload in the table's order; `cold` empties all caches of the target."""
    yield from sequential(root, plan, cold)
    yield from random_io(root, plan, cold)
    yield from small_files(root, plan)
