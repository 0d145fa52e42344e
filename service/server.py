"""gunicorn, started from Python so ``spinehip serve`` needs no separate config file."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from service.app import create_app
from service.config import Settings
from service.logging_setup import configure_logging


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        settings = Settings.from_env()
        configure_logging(settings)
        return create_app(settings)


def run_gunicorn(*, host: str, port: int, workers: int, timeout: int) -> int:
    Settings.from_env()  # fail fast on a bad environment, before forking workers
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "timeout": timeout,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
        }
    ).run()
    return 0
