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
import subprocess
from dataclasses import dataclass
from pathlib import Path

from service.config import PROJECT_ROOT
from tests.support.processes import RunningServer, ServerUnavailable, free_port, start

INSTALLER = PROJECT_ROOT / "scripts" / "fhir-server-venv.sh"
DEFAULT_VENV = PROJECT_ROOT / ".fhir-venv"
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


@dataclass(frozen=True)
class LocalFhirServer(RunningServer):
    """A running server: where it listens, the token it accepts, and how to stop it."""

    token: str = ""

    def suspend(self) -> None:
        """Freeze the process: connections are accepted by the kernel and never answered."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
        super().stop()


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


def start_server(
    executable: Path, workdir: Path, *, startup_timeout_s: float = STARTUP_TIMEOUT_S
) -> LocalFhirServer:
    """Start a server with its data in ``workdir`` and return once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = secrets.token_urlsafe(24)
    config = workdir / "settings.yaml"
    config.write_text(json.dumps(_settings(workdir, port, token)))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    env["SEKMET_CONFIG"] = str(config)
    started = start("server", [str(executable), "serve", "--config", str(config)], env, workdir,
                    f"http://127.0.0.1:{port}/fhir", cwd=workdir)
    server = LocalFhirServer(started.name, started.base_url, started.process, started.log_path, token)
    try:
        server.wait_until_answering("/metadata", startup_timeout_s)  # open without a token
    except ServerUnavailable as exc:
        server.stop()
        raise FhirServerUnavailable(f"the FHIR server did not start: {exc}") from None
    return server
