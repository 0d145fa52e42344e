"""The connection the hook path's operations run on, kept per thread where the database is a file.

Every hook call runs two operations, the snooze look-up and the audit write. Taking a connection
from the pool and giving it back for each cost more than their statements, so on SQLite each
thread keeps one. A connection that saw any failure is discarded, never pooled again, and the
next operation starts from a fresh one. PostgreSQL takes one from the pool each time: the pool's
pre-ping then finds a connection that the server, or a proxy, closed while it sat idle.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


class HookConnections:
    """Connections for the hook path's operations: held per thread (``hold``) or pooled."""

    def __init__(self, engine: Engine, *, hold: bool) -> None:
        self.engine = engine
        self.hold = hold
        self._local = threading.local()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one operation; a transaction is the caller's to begin."""
        if not self.hold:
            with self.engine.connect() as pooled:
                yield pooled
            return
        held = self._held()
        try:
            yield held
        except BaseException:
            self._discard()
            raise

    def _held(self) -> Connection:
        kept = getattr(self._local, "kept", None)
        if kept is not None:
            pid, connection = kept
            # A connection is never used in a process it was not opened in (a forked worker).
            if pid == os.getpid() and not connection.closed and not connection.invalidated:
                return connection
            self._discard()
        connection = self.engine.connect()
        self._local.kept = (os.getpid(), connection)
        return connection

    def _discard(self) -> None:
        """Drop this thread's connection without returning it to the pool."""
        kept, self._local.kept = getattr(self._local, "kept", None), None
        if kept is not None:
            kept[1].invalidate()

    def close(self) -> None:
        """Close this thread's connection; another thread's closes when that thread ends."""
        kept, self._local.kept = getattr(self._local, "kept", None), None
        if kept is not None and kept[0] == os.getpid():
            kept[1].close()
