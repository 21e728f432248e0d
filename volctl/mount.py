"""volctl mount and umount: a volume as a local directory."""

import argparse
import contextlib
import errno
import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

from fuse_client import mounts
from fuse_client.run import MountOptions, serve
from storage_server import logs
from storage_server.client import ClientSettings

READY_SECONDS = 30.0
EXIT_SECONDS = 15.0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    mount = sub.add_parser("mount", help="mount a volume at a directory")
    mount.add_argument("name")
    mount.add_argument("mountpoint")
    mount.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground")
    mount.add_argument("--read-only", action="store_true")
    mount.add_argument(
        "--attr-ttl",
        type=float,
        default=MountOptions.attr_ttl,
        help=f"seconds attributes are cached (default {MountOptions.attr_ttl:g})",
    )
    mount.add_argument(
        "--io-timeout",
        type=float,
        default=MountOptions.io_timeout,
        help="seconds I/O waits for an unreachable server before failing; 0 waits for ever",
    )
    mount.add_argument("--log-file", help="where a background mount logs")
    mount.set_defaults(run=cmd_mount)

    umount = sub.add_parser("umount", help="unmount a volume")
    umount.add_argument("mountpoint")
    umount.set_defaults(run=cmd_umount)


def _default_log(name: str) -> Path:
    base = Path("/var/log/netvol") if os.geteuid() == 0 else mounts.state_dir().parent
    return base / f"mount-{name}.log"


def cmd_mount(args: argparse.Namespace, settings: ClientSettings) -> int:
    mountpoint = str(Path(args.mountpoint).resolve())
    if not Path(mountpoint).is_dir():
        print(f"volctl: mount point {args.mountpoint} is not a directory", file=sys.stderr)
        return 2
    if mounts.mounted_fstype(mountpoint) is not None:
        print(f"volctl: {mountpoint} is already a mount point", file=sys.stderr)
        return 2
    log_file = Path(args.log_file) if args.log_file else _default_log(args.name)
    options = MountOptions(
        volume=args.name,
        mountpoint=mountpoint,
        attr_ttl=args.attr_ttl,
        io_timeout=args.io_timeout,
        read_only=args.read_only,
        log_file=str(log_file),
    )
    if args.foreground:
        logs.setup("info")
        try:
            serve(settings, options)
        except OSError as exc:
            print(f"volctl: cannot mount {args.name}: {exc.strerror or exc}", file=sys.stderr)
            return 3 if exc.errno == errno.ENOENT else 1
        except RuntimeError as exc:  # mfusepy: libfuse refused; it printed why above
            print(f"volctl: cannot mount {args.name} at {mountpoint}: {exc}", file=sys.stderr)
            return 1
        # Everything is stored and closed; the interpreter's last full garbage
        # collection would only hold the exit back (up to a second on a busy host).
        gc.freeze()
        return 0
    return _spawn(args, log_file, mountpoint)


def _spawn(args: argparse.Namespace, log_file: Path, mountpoint: str) -> int:
    """Run this same command with -f as its own session, and wait until it is mounted."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "volctl",
        *sys.argv[1:],
        "--foreground",
        "--log-file",
        str(log_file),
    ]
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    if mounts.wait_until_mounted(proc, mountpoint, READY_SECONDS):
        print(f"mounted {args.name} at {mountpoint} (log: {log_file})")
        return 0
    if proc.poll() is None:
        proc.kill()
    tail = log_file.read_text(errors="replace").strip().splitlines()[-1:]
    reason = tail[0].removeprefix("volctl: ") if tail else "the mount process ended"
    print(f"volctl: mount failed: {reason}", file=sys.stderr)
    return proc.returncode if proc.returncode and proc.returncode > 0 else 1


def cmd_umount(args: argparse.Namespace, settings: ClientSettings) -> int:
    mountpoint = str(Path(args.mountpoint).resolve())
    if not mounts.is_netvol_mount(mountpoint):
        print(f"volctl: {mountpoint} is not a netvol mount", file=sys.stderr)
        return 2
    record = mounts.load(mountpoint)
    try:
        mounts.unmount(mountpoint)
    except OSError as exc:
        print(f"volctl: cannot unmount {mountpoint}: {exc}", file=sys.stderr)
        return 1
    # The kernel let go only once every file on the mount was closed, and each
    # close stored its data or told the application it could not. A process
    # still there after that is retrying such a failed store against a server
    # that is away (reads stop at the unmount): it holds nothing that was
    # acknowledged, so it is stopped rather than waited for without end.
    if record is not None and not mounts.wait_for_exit(record.pid, EXIT_SECONDS):
        print(
            f"volctl: mount process {record.pid} lingered after unmount; stopping it",
            file=sys.stderr,
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
    return 0
