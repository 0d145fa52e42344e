"""Run the local FHIR R4 server (sekmet-fhir, in a venv of its own) for the integration tests.

The server pins its own fhir.resources and FastAPI, so it lives in ``.fhir-venv/`` (made by
``scripts/fhir-server-venv.sh``) and runs as a child process on 127.0.0.1, with a throw-away
data directory and a random bearer token. Its inbound validation is strict R4B, so fixtures that
load here are well-formed FHIR.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "scripts" / "fhir-server-venv.sh"
DEFAULT_VENV = ROOT / ".fhir-venv"
INSTALL_TIMEOUT_S = 600.0
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class FhirEndpoint:
    """A FHIR server the tests may write to: its base URL and the token it accepts."""

    base_url: str
    token: str | None


class FhirServerUnavailable(Exception):
    """The local FHIR server could not be installed or started; the message says why."""


def fhir_venv() -> Path:
    return Path(os.environ.get("FHIR_VENV") or DEFAULT_VENV)


def ensure_installed(venv: Path) -> Path:
    """The server's executable, installing the venv first when it is missing."""
    executable = venv / "bin" / "sekmet"
    if executable.exists():
        return executable
    try:
        done = subprocess.run(
            ["bash", str(INSTALLER), str(venv)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FhirServerUnavailable(
            f"installing sekmet-fhir into {venv} took over {INSTALL_TIMEOUT_S:g} s"
        ) from None
    if done.returncode != 0 or not executable.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise FhirServerUnavailable(
            f"cannot install sekmet-fhir into {venv} (no package index reachable?): "
            + " | ".join(tail)
        )
    return executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalFhirServer:
    """A running server: where it listens, the token it accepts, and how to stop it."""

    base_url: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def suspend(self) -> None:
        """Freeze the process: connections are accepted by the kernel and never answered."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _settings(workdir: Path, port: int, token: str) -> dict[str, object]:
    return {
        "base_url": f"http://127.0.0.1:{port}/fhir",
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(workdir / "data"),
        "server_auth": {"types": ["bearer"], "tokens": [token]},
        "simulator": {"enabled": False},
        "log_inbound": False,
    }


def _wait_until_ready(server: LocalFhirServer, timeout_s: float) -> None:
    """Poll ``/metadata`` (open without a token) until the server answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise FhirServerUnavailable(
                f"the FHIR server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if requests.get(f"{server.base_url}/metadata", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise FhirServerUnavailable(
        f"the FHIR server did not answer within {timeout_s:g} s:\n{server.log_tail()}"
    )


def start_server(
    executable: Path, workdir: Path, *, startup_timeout_s: float = STARTUP_TIMEOUT_S
) -> LocalFhirServer:
    """Start a server with its data in ``workdir`` and return once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = secrets.token_urlsafe(24)
    config = workdir / "settings.yaml"
    config.write_text(json.dumps(_settings(workdir, port, token)))  # JSON is YAML
    log_path = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    env["SEKMET_CONFIG"] = str(config)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(executable), "serve", "--config", str(config)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LocalFhirServer(f"http://127.0.0.1:{port}/fhir", token, process, log_path)
    _wait_until_ready(server, startup_timeout_s)
    return server
