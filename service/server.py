"""gunicorn, started from Python so ``spinehip serve`` needs no separate config file.

The app (hooks, rule set, database schema) is built once in the master and inherited by every
worker (``preload_app``). A worker that is replaced later (crash, timeout) therefore starts from
a rule set that was valid, never from whatever is on disk now: a bad edit must not stop workers
from booting, and gunicorn shuts the whole server down when one cannot boot.
"""

from __future__ import annotations

import signal
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from service.app import create_app
from service.config import Settings
from service.engine import install_sighup
from service.logging_setup import configure_logging


class _Arbiter(Arbiter):
    """SIGHUP reloads the rules in every worker instead of restarting them.

    gunicorn's own SIGHUP restarts workers: the signal goes to the workers' rule reloaders, which
    keep the last good set when the files on disk are invalid.
    """

    def handle_hup(self) -> None:
        self.log.info("SIGHUP: reloading rules in every worker")
        self.kill_workers(signal.SIGHUP)


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, settings: Settings, options: dict[str, Any]):
        self.app = app
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("preload_app", True)
        self.cfg.set("post_fork", self._post_fork)
        self.cfg.set("post_worker_init", self._post_worker_init)

    def load(self) -> Flask:
        return self.app

    def _post_fork(self, _server: Any, _worker: Any) -> None:
        # Database connections opened in the master must not be shared across processes.
        self.app.extensions["spinehip"].store.engine.dispose(close=False)

    def _post_worker_init(self, _worker: Any) -> None:
        """After gunicorn set the worker's own signal handlers: add rule reloading."""
        rules = self.app.extensions["spinehip"].rules
        rules.check_for_changes()  # catch up with edits made since the master loaded the rules
        if self.settings.rules_watch_s > 0:
            rules.start_watching(self.settings.rules_watch_s)
        install_sighup(rules)

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:
            raise SystemExit(f"error: {exc}") from exc


def run_gunicorn(*, host: str, port: int, workers: int, timeout: int) -> int:
    """Build the app (failing fast on bad hooks, rules or settings), then serve it."""
    settings = Settings.from_env()
    configure_logging(settings)
    app = create_app(settings)
    _Gunicorn(
        app,
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "timeout": timeout,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
        },
    ).run()
    return 0
