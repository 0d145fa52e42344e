"""The background task that moves journalled records into the database once it answers again.

One daemon thread per process, started on the process's first store operation (so gunicorn
workers start their own after fork, never the master). At exit it makes one last attempt, so a
worker stopped after an outage leaves nothing behind that it could have written.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from service.store.journal import Entry, Journal

log = logging.getLogger(__name__)


class Replayer:
    def __init__(
        self,
        journal: Journal,
        apply: Callable[[list[Entry]], int],
        ping: Callable[[], None],
        interval_s: float,
    ) -> None:
        self._journal = journal
        self._apply = apply
        self._ping = ping
        self._interval_s = interval_s
        self._pid = -1
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._failing = False

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            threading.Thread(target=self._loop, name="spinehip-journal-replay", daemon=True).start()
            atexit.register(self.stop)

    def stop(self) -> None:
        """End the loop after one last replay attempt (graceful shutdown)."""
        if self._pid != os.getpid() or self._stop.is_set():
            return
        self._stop.set()
        self.replay_once()

    def replay_once(self) -> int:
        """Drain the journal if the database answers; returns how many records went in."""
        try:
            if not self._journal.depth():
                return 0
            self._ping()
            written = self._journal.drain(self._apply)
        except Exception as exc:  # the next round retries; the records stay in the journal
            if not self._failing:
                log.warning("journal replay failed, will retry: %s", type(exc).__name__)
            self._failing = True
            return 0
        if written:
            log.info("replayed %d journalled record(s) into the database", written)
        self._failing = False
        return written

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.replay_once()
