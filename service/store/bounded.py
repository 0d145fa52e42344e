"""A wall-clock limit on each database operation of the hook path.

A server database (PostgreSQL) can stall mid-answer where no driver timeout reaches, so there the
operation runs on a small per-process thread pool and the caller waits at most ``bound_s``. An
operation that overruns keeps its thread until the engine's own timeouts end it; while every
thread is still busy, further operations fail at once instead of queueing behind them.

SQLite runs in the calling thread, without the hand-off: its only waits are its locks and its
own work, and both are cut at the operation's :data:`DEADLINE` (each statement's busy timeout is
the time left, and a statement still running then is interrupted; ``database.engine_for``).

After a failure, operations fail at once for ``cooldown_s`` (a circuit breaker): during an outage
a call pays the bound once, not on every look-up and write of every call. Whatever the cause
(refused connection, lock, stalled server, full pool), the caller sees one exception,
:class:`DatabaseUnavailable`, and decides what degraded answer to give.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import ContextVar
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")
THREADS = 4
COOLDOWN_S = 1.0
#: What counts as the database failing rather than a bug: driver errors, pool timeouts, sockets.
DATABASE_FAULTS = (DBAPIError, PoolTimeout, OSError)
#: The faults that pass: retrying later may succeed (unlike a constraint the data violates).
TRANSIENT_FAULTS = (OperationalError, InterfaceError, PoolTimeout, OSError)
#: When the operation running in this thread must end (``time.monotonic()``); infinite outside one.
DEADLINE: ContextVar[float] = ContextVar("database_deadline", default=math.inf)


class DatabaseUnavailable(Exception):
    """The database did not complete an operation within the bound; ``reason`` says how."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.reason = reason


def describe(exc: BaseException) -> str:
    """A short, secret-free cause for logs and traces (never the URL or the statement)."""
    original = getattr(exc, "orig", None) or exc
    return type(original).__name__


class Bounded:
    """Runs callables with a wall-clock bound; one instance per store, threads made per process."""

    def __init__(self, bound_s: float, threads: int = THREADS, cooldown_s: float = COOLDOWN_S,
                 *, inline: bool = False) -> None:
        self.bound_s = bound_s
        self.inline = inline
        self.cooldown_s = cooldown_s
        self._open_until = 0.0
        self._threads = threads
        self._pid = -1
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(threads)
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        # Threads do not survive fork: each gunicorn worker makes its own pool on first use.
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="spinehip-db")
                self._slots = threading.BoundedSemaphore(self._threads)
                self._pid = os.getpid()
            return self._pool

    def run(self, operation: str, fn: Callable[[], T], *, probe: bool = False) -> T:
        """``fn()`` or DatabaseUnavailable after ``bound_s``; other exceptions pass through.

        A ``probe`` (the readiness ping) runs even while the breaker is open, and closes it when
        the database answers.
        """
        if not probe and time.monotonic() < self._open_until:
            raise DatabaseUnavailable(operation, "failed moments ago; not retried yet")
        try:
            result = self._run_inline(operation, fn) if self.inline else self._run(operation, fn)
        except DatabaseUnavailable:
            self._open_until = time.monotonic() + self.cooldown_s
            raise
        if probe:
            self._open_until = 0.0
        return result

    def _run(self, operation: str, fn: Callable[[], T]) -> T:
        executor = self._executor()
        slots = self._slots
        if not slots.acquire(blocking=False):
            raise DatabaseUnavailable(operation, "every database thread is still waiting on earlier calls")
        future: Future[T] = executor.submit(_released, slots, fn)
        try:
            return future.result(timeout=self.bound_s)
        except FutureTimeout:
            raise DatabaseUnavailable(operation, f"no answer within {self.bound_s * 1000:.0f} ms") from None
        except DATABASE_FAULTS as exc:
            raise DatabaseUnavailable(operation, describe(exc)) from exc

    def _run_inline(self, operation: str, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.bound_s
        token = DEADLINE.set(deadline)
        try:
            return fn()
        except DATABASE_FAULTS as exc:
            reason = (f"no answer within {self.bound_s * 1000:.0f} ms"
                      if time.monotonic() >= deadline else describe(exc))
            raise DatabaseUnavailable(operation, reason) from exc
        finally:
            DEADLINE.reset(token)

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _released(slots: threading.BoundedSemaphore, fn: Callable[[], T]) -> T:
    try:
        return fn()
    finally:
        slots.release()
