"""Real server processes for the tests and benchmarks: start, wait until they answer, stop.

One implementation for every suite that runs ``spinehip serve``, the local FHIR server or the
benchmark's floor app, so a fix to start-up handling (a busy machine, a crashed worker) lands
everywhere at once.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from service import cli
from service.config import PROJECT_ROOT

SPINEHIP = Path(sys.executable).with_name("spinehip")
STARTUP_TIMEOUT_S = 60.0


class ServerUnavailable(RuntimeError):
    """A server that did not start; the message carries the tail of its log."""


#: Ports handed to servers started later: below the kernel's ephemeral range, so that a socket
#: bound to port 0 meanwhile (a test's JWK Set, another xdist worker's client) never takes one.
SERVER_PORTS = range(20000, 32768)


def free_port() -> int:
    """A loopback port free now, for a server that binds it a moment later."""
    for port in random.sample(SERVER_PORTS, 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerUnavailable(f"no free port in {SERVER_PORTS}")


@dataclass(frozen=True)
class RunningServer:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until_answering(self, path: str = "/healthz", timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Poll ``path`` until it answers 200; a busy machine may accept before it can reply."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.base_url}{path}", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise ServerUnavailable(f"{self.name} did not answer within {timeout_s:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()  # gunicorn's master stops its workers on SIGTERM
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def start(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, base_url: str,
    cwd: Path = PROJECT_ROOT,
) -> RunningServer:
    """Start ``argv`` with its output in ``log_dir/name.log``; does not wait for it."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )
    return RunningServer(name, base_url, process, log_path)


def spinehip_env(**settings: str) -> dict[str, str]:
    """This environment without any inherited ``SPINEHIP_*`` setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINEHIP_")}
    env.update(settings)
    return env


def evaluate_in_process(path: Path, env: Mapping[str, str], monkeypatch, capsysbinary
                        ) -> tuple[int, bytes]:
    """``spinehip evaluate`` run by this process with only ``env``'s settings: its exit code and
    standard output."""
    with monkeypatch.context() as patched:
        for key in [k for k in os.environ if k.startswith("SPINEHIP_") or k == "DATABASE_URL"]:
            patched.delenv(key)
        for key, value in env.items():
            patched.setenv(key, value)
        capsysbinary.readouterr()
        code = cli.main(["evaluate", str(path)])
    return code, capsysbinary.readouterr().out


def start_spinehip(env: Mapping[str, str], log_dir: Path, *, workers: int = 1,
                   name: str = "spinehip", port: int | None = None) -> RunningServer:
    """``spinehip serve`` on a free loopback port; does not wait for it."""
    port = port or free_port()
    argv = [str(SPINEHIP), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return start(name, argv, env, log_dir, f"http://127.0.0.1:{port}")


@contextmanager
def running(server: RunningServer, ready_path: str = "/healthz") -> Iterator[RunningServer]:
    """Wait for ``server`` to answer, yield it, always stop it."""
    try:
        server.wait_until_answering(ready_path)
        yield server
    finally:
        server.stop()
