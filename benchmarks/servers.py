"""gunicorn servers on loopback for the HTTP measurements: the service and the framework floor.

Both run as child processes with two sync workers and the gunicorn options of ``spinehip serve``
(``service/server.py``), so the only difference between them is the application. Starting,
waiting and stopping is the test suite's own code (``tests/support/processes.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import (
    RunningServer,
    ServerUnavailable,
    free_port,
    running,
    spinehip_env,
    start,
    start_spinehip,
)

__all__ = ["RunningServer", "ServerUnavailable", "floor_server", "spinehip_server"]

WORKERS = 2
# The options service/server.py passes to gunicorn, as command-line flags for the floor app.
FLOOR_GUNICORN_FLAGS = ("--timeout", "30", "--keep-alive", "5", "--log-level", "warning")


@contextmanager
def spinehip_server(workdir: Path) -> Iterator[RunningServer]:
    """``spinehip serve --workers 2``: development mode, no demo patients, a fresh SQLite file."""
    env = spinehip_env(SPINEHIP_MODE="development", SPINEHIP_DEMO_PATIENTS="0",
                       DATABASE_URL=f"sqlite:///{workdir / 'spinehip.db'}")
    with running(start_spinehip(env, workdir, workers=WORKERS)) as server:
        yield server


@contextmanager
def floor_server(workdir: Path) -> Iterator[RunningServer]:
    """``benchmarks/floor_app.py`` under gunicorn with the same worker count and options."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", str(WORKERS), *FLOOR_GUNICORN_FLAGS, "benchmarks.floor_app:app"]
    server = start("floor", argv, spinehip_env(), workdir, f"http://127.0.0.1:{port}")
    with running(server) as ready:
        yield ready
