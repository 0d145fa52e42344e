"""gunicorn, started from Python so ``spinehip serve`` needs no separate config file."""

from __future__ import annotations

import signal
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from service.app import create_app
from service.cdshooks.services import load_services
from service.config import Settings
from service.engine import install_sighup, load_ruleset
from service.logging_setup import configure_logging
from service.store import Store


class _Arbiter(Arbiter):
    """SIGHUP reloads the rules in every worker instead of restarting them.

    gunicorn's own SIGHUP restarts workers, and a worker that boots on a bad rule set refuses to
    start: the last good rules must keep serving, so the signal goes to the workers' reloaders.
    """

    def handle_hup(self) -> None:
        self.log.info("SIGHUP: reloading rules in every worker")
        self.kill_workers(signal.SIGHUP)


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
        app = create_app(settings)
        rules = app.extensions["spinehip"].rules
        if settings.rules_watch_s > 0:
            rules.start_watching(settings.rules_watch_s)
        install_sighup(rules)  # runs in the worker, after gunicorn reset its signal handlers
        return app

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:
            raise SystemExit(f"error: {exc}") from exc


def run_gunicorn(*, host: str, port: int, workers: int, timeout: int) -> int:
    settings = Settings.from_env()
    # Fail fast, before forking, with every located error of a bad hooks or rules file.
    load_services(settings.hooks_dir)
    load_ruleset(settings.rules_dir)
    store = Store.from_settings(settings)
    store.migrate()  # once, here: workers then find the schema current
    store.close()
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
