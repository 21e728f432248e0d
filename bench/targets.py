"""What the workloads run in: a directory some target sets up and tears down.

A target's setup() returns an empty directory to work in; teardown() undoes whatever
setup() got through, even a part of it, so the runner calls it in a finally block.
"""

import abc
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from bench import procs


class TargetUnavailable(Exception):
    """The target cannot run on this machine (a tool is missing); it is skipped."""


class Target(abc.ABC):
    name: ClassVar[str]

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        # Undo steps pile up here as setup() makes progress; teardown() runs them all.
        self._cleanup = contextlib.ExitStack()

    @abc.abstractmethod
    def setup(self) -> Path:
        """Start what the target needs; return an empty directory on it."""

    def drop_caches(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Forget what this target caches beyond the page cache (e.g. remount).

        The runner drops the kernel's page cache itself, after calling this.
        """

    def describe(self) -> str:
        """One line for the report: what this target is and how it was set up."""
        return self.name

    def teardown(self) -> None:
        self._cleanup.close()

    def _tempdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"netvol-bench-{self.name}-", dir=self.workdir))
        self._cleanup.callback(procs.remove_tree, path)
        return path


@contextlib.contextmanager
def running(target: Target) -> Iterator[Path]:
    try:
        yield target.setup()
    finally:
        target.teardown()


class LocalTarget(Target):
    """A temp directory on the local disk: the upper limit for the others."""

    name = "local"

    def setup(self) -> Path:
        self._root = self._tempdir()
        return self._root

    def describe(self) -> str:
        return f"local disk, {self._root.parent}"
