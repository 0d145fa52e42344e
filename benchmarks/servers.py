"""gunicorn servers on loopback for the HTTP measurements: the service and the framework floor.

Both run as child processes with two sync workers and the gunicorn options of ``spinehip serve``
(``service/server.py``), so the only difference between them is the application.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.integration import helper
from service.config import PROJECT_ROOT
from service.store import Store

WORKERS = 2
STARTUP_TIMEOUT_S = 60.0
# The options service/server.py passes to gunicorn, as command-line flags for the floor app.
FLOOR_GUNICORN_FLAGS = ("--timeout", "30", "--keep-alive", "5", "--log-level", "warning")


class ServerUnavailable(Exception):
    """A server that did not start; the message carries the tail of its log."""


@dataclass(frozen=True)
class RunningServer:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_ready(server: RunningServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailable(f"{server.name} exited with {server.process.returncode}:\n"
                                    f"{server.log_tail()}")
        try:
            if requests.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise ServerUnavailable(f"{server.name} did not answer within {timeout_s:g} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # gunicorn's master stops its workers on SIGTERM
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@contextmanager
def _serve(name: str, argv: list[str], env: Mapping[str, str], workdir: Path, port: int
           ) -> Iterator[RunningServer]:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server, STARTUP_TIMEOUT_S)
        yield server
    finally:
        _stop(process)


def _free_port() -> int:
    return helper("fhir_server_process").free_port()


@contextmanager
def spinehip_server(workdir: Path) -> Iterator[RunningServer]:
    """``spinehip serve --workers 2``: development mode, no demo patients, a fresh SQLite file.

    The schema is migrated before the workers start, as a deployment does: two workers migrating
    one new SQLite file at once race (only PostgreSQL migrations take turns), and the loser exits.
    """
    port = _free_port()
    database_url = f"sqlite:///{workdir / 'spinehip.db'}"
    store = Store.from_url(database_url)
    try:
        store.migrate()
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINEHIP_")}
    env.update(SPINEHIP_MODE="development", SPINEHIP_DEMO_PATIENTS="0", DATABASE_URL=database_url)
    argv = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(WORKERS)]
    with _serve("spinehip", argv, env, workdir, port) as server:
        yield server


@contextmanager
def floor_server(workdir: Path) -> Iterator[RunningServer]:
    """``benchmarks/floor_app.py`` under gunicorn with the same worker count and options."""
    port = _free_port()
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", str(WORKERS), *FLOOR_GUNICORN_FLAGS, "benchmarks.floor_app:app"]
    with _serve("floor", argv, os.environ, workdir, port) as server:
        yield server
