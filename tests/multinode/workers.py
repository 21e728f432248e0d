"""Programs the multi-node tests run on a node (python workers.py COMMAND ...;
standard library only, so it runs from any directory).

Each prints one line per thing done, flushed, so that the test can follow it
from another process. They hold files open on a FUSE mount, so they run in
processes of their own: a process holding FUSE files must never fork the
storage server (a forked child's close of an inherited file is a FUSE flush,
which waits for that very server).
"""

import argparse
import fcntl
import hashlib
import os
import signal
import struct
import sys
from pathlib import Path
from types import FrameType

CHUNK = 64 * 1024

# struct flock on Linux x86-64 and arm64: l_type, l_whence, l_start, l_len, l_pid.
FLOCK = struct.Struct("hhqqi4x")
TYPES = {"read": fcntl.F_RDLCK, "write": fcntl.F_WRLCK}


def say(*words: object) -> None:
    print(*words, flush=True)


def chunk_data(index: int, size: int = CHUNK) -> bytes:
    """The bytes a chunk of a shared file holds: different for every index."""
    seed = hashlib.sha256(str(index).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _lock(f: int, spec: str, wait: bool) -> None:
    """Lock as `spec` says: flock-shared, flock-exclusive, or read:START:LEN / write:START:LEN."""
    if spec.startswith("flock-"):
        operation = fcntl.LOCK_SH if spec == "flock-shared" else fcntl.LOCK_EX
        fcntl.flock(f, operation | (0 if wait else fcntl.LOCK_NB))
        return
    kind, start, length = spec.split(":")
    request = FLOCK.pack(TYPES[kind], os.SEEK_SET, int(start), int(length), 0)
    fcntl.fcntl(f, fcntl.F_SETLKW if wait else fcntl.F_SETLK, request)


def lock(args: argparse.Namespace) -> None:
    """Take locks (PATH=SPEC each), say "locked" (or "busy"), hold them until stdin closes."""
    files = []
    for claim in args.claims:
        path, spec = claim.split("=")
        f = os.open(path, os.O_RDWR)
        files.append(f)
        try:
            _lock(f, spec, args.wait)
        except BlockingIOError:
            say("busy")
            return
    say("locked")
    sys.stdin.read()


def probe(args: argparse.Namespace) -> None:
    """F_GETLK for a write lock of START:LEN: "unlocked", or the lock in the way."""
    f = os.open(args.path, os.O_RDWR)
    start, length = (int(n) for n in args.range.split(":"))
    asked = FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    kind, _whence, start, length, pid = FLOCK.unpack(fcntl.fcntl(f, fcntl.F_GETLK, asked))
    if kind == fcntl.F_UNLCK:
        say("unlocked")
    else:
        say("read" if kind == fcntl.F_RDLCK else "write", start, length, pid)


class Stop:
    """Turns SIGTERM into a flag the writing loops look at between files."""

    def __init__(self) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True


def write_files(args: argparse.Namespace) -> None:
    """Write files PREFIX-N until SIGTERM; say "NAME SHA256" once each is fsynced and closed."""
    stop, index = Stop(), 0
    while not stop.stopping:
        data = os.urandom(CHUNK + index * 997)
        name = f"{args.prefix}-{index:05d}"
        with open(Path(args.directory) / name, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        say(name, hashlib.sha256(data).hexdigest())
        index += 1


def write_chunks(args: argparse.Namespace) -> None:
    """Write chunks FIRST, FIRST+STEP, ... below COUNT of one file, each fsynced; say each."""
    f = os.open(args.path, os.O_WRONLY)
    for index in range(args.first, args.count, args.step):
        os.pwrite(f, chunk_data(index), index * CHUNK)
        os.fsync(f)
        say(index)
    os.close(f)


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers")
    sub = parser.add_subparsers(required=True)
    command = sub.add_parser("lock")
    command.add_argument("claims", nargs="+", help="PATH=SPEC")
    command.add_argument("--wait", action="store_true", help="wait for the locks (F_SETLKW)")
    command.set_defaults(run=lock)
    command = sub.add_parser("probe")
    command.add_argument("path")
    command.add_argument("range", help="START:LEN")
    command.set_defaults(run=probe)
    command = sub.add_parser("write-files")
    command.add_argument("directory")
    command.add_argument("prefix")
    command.set_defaults(run=write_files)
    command = sub.add_parser("write-chunks")
    command.add_argument("path")
    command.add_argument("first", type=int)
    command.add_argument("step", type=int)
    command.add_argument("count", type=int)
    command.set_defaults(run=write_chunks)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
