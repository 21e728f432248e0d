"""python -m bench: run the workloads on each target in turn and print one table.

Targets run one after another, each set up just before its workloads and torn down
right after, so one target's servers never compete with another's measurements.
Exit status: 0 when every available target ran every workload, 1 when one failed,
2 for bad arguments. An unavailable target (a tool missing) is skipped, not failed.
"""

import argparse
import dataclasses
import logging
import os
import re
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from bench import report, workloads
from bench.netvol import NetvolTarget
from bench.sshfs import SshfsTarget
from bench.targets import LocalTarget, Target, TargetUnavailable, running

log = logging.getLogger("bench")

TARGETS = ("local", "sshfs", "netvol")
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
# Full size as the issue asks; --quick is a smoke run of a few seconds.
FULL = workloads.Plan(
    size=2**30,
    rand_size=256 * 2**20,
    rand_ops=20000,
    rand_seconds=30.0,
    files=5000,
    file_size=4096,
    seed=42,
)
QUICK = dataclasses.replace(
    FULL, size=8 * 2**20, rand_size=8 * 2**20, rand_ops=500, rand_seconds=5.0, files=200
)
_SIZE = re.compile(r"^(\d+)\s*([KMGT]?)(?:i?B?)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Binary units: 1G is 1 GiB, as in dd."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected e.g. 4K, 256M, 1G")
    return int(match.group(1)) << 10 * " KMGT".index(match.group(2).upper() or " ")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated, in order")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--size", type=parse_size, help="sequential file (default 1G; --quick 8M)")
    parser.add_argument(
        "--rand-size", type=parse_size, help="random I/O file (default 256M; --quick 8M)"
    )
    parser.add_argument(
        "--ops", type=int, help="random reads, and writes, at most (20000; --quick 500)"
    )
    parser.add_argument(
        "--time-limit", type=float, help="seconds per random workload (30; --quick 5)"
    )
    parser.add_argument("--files", type=int, help="small files (default 5000; --quick 200)")
    parser.add_argument("--file-size", type=parse_size, help="each small file (default 4K)")
    parser.add_argument("--seed", type=int, help="for data and offsets (default 42)")
    parser.add_argument(
        "--workdir", type=Path, help="where temp dirs go (default: the system temp dir)"
    )
    parser.add_argument(
        "--sshfs-options", default="", help="extra sshfs -o options, comma-separated"
    )
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> workloads.Plan:
    flags = {
        "size": args.size,
        "rand_size": args.rand_size,
        "rand_ops": args.ops,
        "rand_seconds": args.time_limit,
        "files": args.files,
        "file_size": args.file_size,
        "seed": args.seed,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    plan = dataclasses.replace(QUICK if args.quick else FULL, **given)
    if plan.size < 1 or plan.rand_size < workloads.PAGE or plan.rand_ops < 1 or plan.files < 1:
        parser.error("sizes and counts must be positive; --rand-size at least 4K")
    return plan


def make_target(name: str, args: argparse.Namespace, plan: workloads.Plan) -> Target:
    workdir: Path = args.workdir or Path(tempfile.gettempdir())
    if name == "local":
        return LocalTarget(workdir)
    if name == "sshfs":
        return SshfsTarget(workdir, [o for o in args.sshfs_options.split(",") if o])
    # Room for the largest file and the small files, with slack for metadata.
    return NetvolTarget(workdir, volume_size=max(4 * 2**30, 2 * plan.footprint))


def _run(target: Target, plan: workloads.Plan, drop_page_cache: bool) -> report.TargetRun:
    run = report.TargetRun(target.name)

    def cold() -> None:
        target.drop_caches()
        if drop_page_cache:
            os.sync()
            DROP_CACHES.write_text("3\n")

    try:
        with running(target) as root:
            run.description = target.describe()
            for result in workloads.run_all(root, plan, cold):
                log.info("%s: %s %.1f", target.name, result.key, result.value)
                run.results[result.key] = result
    except TargetUnavailable as exc:
        run.status, run.reason = "unavailable", str(exc)
        log.warning("%s: unavailable, skipped: %s", target.name, exc)
    except Exception as exc:
        # One target's failure must not cost the others' numbers; it is reported.
        run.status, run.reason = "failed", _explain(exc)
        log.exception("%s failed", target.name)
    return run


def _explain(exc: BaseException) -> str:
    """The error, and the one it interrupted (a teardown failing after a setup did)."""
    text = f"{type(exc).__name__}: {exc}"
    if exc.__context__ is not None and not exc.__suppress_context__:
        text += f"; while handling {_explain(exc.__context__)}"
    return text


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind through the finally blocks, so mounts and servers are cleaned up.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown or not names:
        parser.error(f"unknown targets {unknown}; choose from {', '.join(TARGETS)}")
    plan = _plan(args, parser)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="bench: %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    notes = []
    drop_page_cache = os.access(DROP_CACHES, os.W_OK)
    if not drop_page_cache:
        notes.append(f"cannot write {DROP_CACHES} (not root?): cold reads may come from memory")
    notes.append("cold = target's drop_caches() (sshfs, netvol: remount) + drop the page cache")
    notes.append("random reads start cold; random writes include the final fsync")
    load_before = os.getloadavg()[0]
    runs = [_run(make_target(name, args, plan), plan, drop_page_cache) for name in names]
    # Other work on the machine skews every number; say how busy it was.
    notes.append(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")

    print(report.render(plan, runs, notes))
    if args.json:
        args.json.write_text(report.to_json(plan, runs, notes) + "\n")
    return 1 if any(run.status == "failed" for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
