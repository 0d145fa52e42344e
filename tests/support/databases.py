"""Databases that misbehave as they do in production, for the fault tests and the benchmark:
SQLite locked by another process, a PostgreSQL server of one's own that can be stopped and
started again."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.config import PROJECT_ROOT

PG_SCRIPT = PROJECT_ROOT / "scripts" / "pg-test-server.sh"

# Another process takes SQLite's write lock and holds it until told to let go (stdin closes),
# as a long report, a backup or a stuck writer does. With "readers" it also shuts out readers, as
# a tool that opens the file in exclusive locking mode and writes does.
_LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "readers":
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
connection.execute("BEGIN EXCLUSIVE")
if sys.argv[2] == "readers":
    connection.execute("CREATE TABLE IF NOT EXISTS lock_holder (x INTEGER)")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


@contextmanager
def sqlite_locked(path: Path, *, readers_too: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite database at ``path`` from another process; in WAL
    mode readers still read, unless ``readers_too``."""
    shut_out = "readers" if readers_too else "writers"
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(path), shut_out],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        yield
    finally:
        if locker.stdin is not None:
            locker.stdin.close()
        locker.wait(timeout=30)


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server of the caller's own (``scripts/pg-test-server.sh``), so stopping it
    disturbs nobody else."""

    state: Path
    url: str

    def run(self, verb: str) -> str:
        return _pg(self.state, verb)

    def halt(self) -> None:
        self.run("halt")

    def resume(self) -> None:
        self.run("resume")


def _pg(state: Path, verb: str) -> str:
    env = {**os.environ, "SPINEHIP_PG_STATE": str(state)}
    done = subprocess.run([str(PG_SCRIPT), verb], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"pg-test-server.sh {verb} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def own_postgres() -> Iterator[Postgres]:
    """Start a private server, yield it, always stop it and delete its data."""
    # Directly under /tmp: when run as root the server's unprivileged owner must reach it.
    state = Path(f"/tmp/spinehip-pg-own-{uuid.uuid4().hex[:12]}")
    url = _pg(state, "start").splitlines()[-1]
    try:
        yield Postgres(state, url)
    finally:
        _pg(state, "stop")
