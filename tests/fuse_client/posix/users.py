"""Run a few lines of Python as another user, to check permissions and ownership.

The child is the test's own interpreter. It starts as root and drops to the given
uid and gid, with no supplementary groups, as its first statements: an interpreter
under a directory that user cannot search (pyenv under /root, mode 0o700) cannot be
exec'd after a drop in preexec_fn, and modules it would import later may be out of
reach for the same reason, so the code gets os, errno, stat and sys imported up front.

The child's working directory is the directory under test, entered while still
root; the code works with paths relative to it, so the directories above it need
not be searchable by the user.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

NOBODY_UID = 65534
NOBODY_GID = 65534

_PRELUDE = """\
import errno, os, stat, sys
os.setgroups([])
os.setgid({gid})
os.setuid({uid})
assert os.getresuid() == ({uid}, {uid}, {uid}), os.getresuid()
assert os.getresgid() == ({gid}, {gid}, {gid}), os.getresgid()
assert os.getgroups() == [], os.getgroups()
"""

_OUTCOME = """\
try:
{body}
except OSError as exc:
    print(errno.errorcode[exc.errno])
else:
    print("ok")
"""


def run_as(uid: int, gid: int, code: str, cwd: Path, timeout: float = 60) -> str:
    """Run `code` as uid:gid in `cwd`; fail unless it exits 0; return its stdout."""
    program = _PRELUDE.format(uid=uid, gid=gid) + textwrap.dedent(code)
    proc = subprocess.run(
        [sys.executable, "-I", "-c", program],
        cwd=cwd,
        env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"code run as {uid}:{gid} exited {proc.returncode}\n"
        f"--- code ---\n{program}\n--- stderr ---\n{proc.stderr}"
    )
    return proc.stdout


def outcome_as(uid: int, gid: int, code: str, cwd: Path) -> str:
    """Run `code` as uid:gid in `cwd`: "ok", or the errno name of the OSError it raised."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    return run_as(uid, gid, _OUTCOME.format(body=body), cwd).strip()


def as_nobody(code: str, cwd: Path) -> str:
    """Run `code` as nobody in `cwd` and return its stdout."""
    return run_as(NOBODY_UID, NOBODY_GID, code, cwd)


def nobody_outcome(code: str, cwd: Path) -> str:
    """Run `code` as nobody in `cwd`: "ok" or the errno name it failed with."""
    return outcome_as(NOBODY_UID, NOBODY_GID, code, cwd)
