"""Smoke test of the benchmark runner: a --quick run on the local disk.

It checks the runner works and its table is whole, not how fast anything is.
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROWS = {
    "seq write": "MB/s",
    "seq read cold": "MB/s",
    "seq read warm": "MB/s",
    "rand read 4K": "ops/s",
    "rand write 4K": "ops/s",
    "create files": "ops/s",
    "stat files": "ops/s",
    "list files": "ops/s",
    "delete files": "ops/s",
}


def test_quick_local_run_prints_every_workload(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--targets", "local", "--workdir", tmp_path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert ["workload", "unit", "local"] in [line.split() for line in lines]
    for label, unit in ROWS.items():
        row = next((line for line in lines if line.startswith(label + "  ")), None)
        assert row is not None, f"no row {label!r} in:\n{done.stdout}"
        got_unit, value = row[len(label) :].split()
        assert got_unit == unit
        assert float(value) > 0, row
    # The runner cleans up after itself.
    assert list(tmp_path.iterdir()) == []
