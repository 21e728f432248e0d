"""Large buffers freed by the server are reused, not faulted in again."""

import subprocess
import sys

# Four 4 MiB buffers held at once and freed, twenty times over; prints the page
# faults taken. With glibc's defaults the freed top of the heap goes back to
# the kernel each round and every page faults again.
WORKLOAD = """
import resource, sys
from storage_server.memory import keep_large_buffers
if sys.argv[1] == "kept":
    keep_large_buffers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    held = [bytearray(4 << 20) for _ in range(4)]
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES_PER_ROUND = 4 * (4 << 20) // 4096


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_kept_buffers_fault_in_once() -> None:
    default, kept = _faults("default"), _faults("kept")
    assert default > 10 * PAGES_PER_ROUND  # the workload does show the problem
    assert kept < 2 * PAGES_PER_ROUND
