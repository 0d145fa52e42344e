"""Databases that misbehave as they do in production: locked by another process, stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.security.conftest import (  # noqa: F401  (the signed-token fixtures, reused)
    ec_key,
    jwks_server,
    make_token,
    production_settings,
    rsa_key,
    trust_file,
)

# Another process takes SQLite's write lock and holds it until told to let go (stdin closes),
# as a long report, a backup or a stuck writer does.
_LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


@contextmanager
def sqlite_locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite database at ``path`` from another process."""
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        yield
    finally:
        if locker.stdin is not None:
            locker.stdin.close()
        locker.wait(timeout=30)
