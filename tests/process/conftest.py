"""A real ``spinehip serve`` process (gunicorn) on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from service.config import PROJECT_ROOT

SPINEHIP = Path(sys.executable).with_name("spinehip")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until /healthz answers; a busy machine may accept the connection before a worker reads it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The service as ``make run`` starts it: embedded defaults, development mode, demo patients."""
    port = free_port()
    env = {
        **os.environ,
        "SPINEHIP_MODE": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('serve') / 'store.db'}",
    }
    env.pop("SPINEHIP_TRUSTED_CLIENTS", None)
    process = subprocess.Popen(
        [str(SPINEHIP), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
