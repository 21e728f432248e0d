"""The other names of hard-linked files.

libfuse's path API gives each name of a file its own kernel inode, each with
its own cached attributes and pages. A change made through one name is
therefore announced to the kernel for every other name we have seen, so that
stat and read through them see it at once, as on a local disk.
"""

import threading
from collections.abc import Callable


class Aliases:
    def __init__(self, invalidate: Callable[[str], None]) -> None:
        self._invalidate = invalidate
        self._lock = threading.Lock()
        self._paths: dict[int, set[str]] = {}

    def seen(self, ino: int, path: str, nlink: int) -> None:
        """`path` names `ino`; worth remembering only while it has other names."""
        with self._lock:
            paths = self._paths.get(ino)
            if paths is not None:
                paths.add(path)
            elif nlink > 1:
                self._paths[ino] = {path}

    def forget(self, ino: int, path: str) -> None:
        with self._lock:
            paths = self._paths.get(ino)
            if paths is not None:
                paths.discard(path)
                if not paths:
                    del self._paths[ino]

    def changed(self, ino: int, *current: str) -> None:
        """`ino` changed through `current` paths: the kernel forgets it under the others."""
        with self._lock:
            others = self._paths.get(ino, set()) - set(current)
        for path in others:
            self._invalidate(path)
