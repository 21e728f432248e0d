"""The C allocator's settings: freed large buffers are reused, not faulted in
again, and a mount's threads share a bounded number of arenas."""

import re
import subprocess
import sys

# Four 4 MiB buffers held at once and freed, twenty times over; prints the page
# faults taken. With glibc's defaults the freed top of the heap goes back to
# the kernel each round and every page faults again.
FAULTS = """
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

# Eight threads allocate at the same time; glibc's malloc_stats() then lists
# one "Arena N:" per arena on stderr.
ARENAS = """
import ctypes, ctypes.util, sys, threading
from storage_server.memory import keep_large_buffers
keep_large_buffers(arenas=int(sys.argv[1]))
barrier = threading.Barrier(8)
def work():
    held = [bytearray(1000) for _ in range(1000)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
"""


def _run(code: str, arg: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, arg], capture_output=True, text=True, check=True
    )


def test_kept_buffers_fault_in_once() -> None:
    default, kept = int(_run(FAULTS, "default").stdout), int(_run(FAULTS, "kept").stdout)
    assert default > 10 * PAGES_PER_ROUND  # the workload does show the problem
    assert kept < 2 * PAGES_PER_ROUND


def test_threads_share_the_arenas_allowed() -> None:
    def arenas(limit: int) -> int:
        return len(re.findall(r"^Arena \d+:", _run(ARENAS, str(limit)).stderr, re.M))

    assert arenas(0) > 2  # unbounded: the threads took arenas of their own
    assert arenas(2) == 2
