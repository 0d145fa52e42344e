"""A progress bar on stderr for long runs: patients done, rate, and the share when known."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
MIN_INTERVAL_S = 0.2


class ProgressBar:
    def __init__(self, total: int | None, stream: TextIO = sys.stderr):
        self.total = total
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._shown = 0  # patients done when last drawn

    def __call__(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._drawn >= MIN_INTERVAL_S or self.done == self.total:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._shown = self.done
        rate = self.done / max(now - self.started, 1e-9)
        if self.total:
            filled = round(WIDTH * min(self.done / self.total, 1.0))
            bar = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        self.stream.write(f"\r{bar} patients, {rate:.0f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.done:
            if self._shown != self.done:
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
