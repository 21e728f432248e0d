"""Background jobs of the server: each runs on its own thread at an interval."""

import logging
import threading
from collections.abc import Callable

from storage_server.config import ConfigError

log = logging.getLogger(__name__)


class Periodic:
    """Runs `job` every `interval` seconds until stopped; a failure is logged, not fatal."""

    def __init__(self, name: str, interval: float, job: Callable[[], object]) -> None:
        if interval <= 0:
            raise ConfigError(f"the interval of {name} must be positive, not {interval}")
        self._interval = interval
        self._job = job
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._job()
            except Exception:
                log.exception("background job %s failed", self._thread.name)
