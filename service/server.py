"""gunicorn, started from Python so ``spinehip serve`` needs no separate config file.

The app (hooks, rule set, database schema) is built once in the master and inherited by every
worker (``preload_app``). A worker that is replaced later (crash, timeout) therefore starts from
a rule set that was valid, never from whatever is on disk now: a bad edit must not stop workers
from booting, and gunicorn shuts the whole server down when one cannot boot.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from prometheus_client import multiprocess

from service.app import create_app
from service.config import Settings
from service.engine import install_sighup
from service.heap import settle
from service.logging_setup import configure_logging

log = logging.getLogger(__name__)


class _JsonLogger(glogging.Logger):
    """gunicorn's own lines (start-up, worker and socket errors) through the service's JSON
    handler on the root logger, instead of gunicorn's plain-text stream handler."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


#: How long a stopping worker may take to finish its calls; deploy/ gives the pod more than this.
GRACEFUL_TIMEOUT_S = 20


class _Arbiter(Arbiter):
    """SIGHUP reloads the rules in every worker instead of restarting them.

    gunicorn's own SIGHUP restarts workers: the signal goes to the workers' rule reloaders, which
    keep the last good set when the files on disk are invalid.
    """

    def handle_hup(self) -> None:
        log.info("SIGHUP: reloading rules in every worker", extra={"fields": {"event": "sighup"}})
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
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("child_exit", self._child_exit)
        self.cfg.set("logger_class", _JsonLogger)

    def load(self) -> Flask:
        settle()  # in the master, after preloading: the workers inherit a settled heap
        return self.app

    def _post_fork(self, _server: Any, _worker: Any) -> None:
        # Database connections opened in the master must not be shared across processes.
        self.app.extensions["spinehip"].store.engine.dispose(close=False)

    def _when_ready(self, server: Any) -> None:
        """The one start-up line: where the service listens and what it serves."""
        address = ", ".join(str(listener) for listener in server.LISTENERS)
        rules = self.app.extensions["spinehip"].rules.current
        log.info("listening on %s", address, extra={"fields": {
            "event": "listening", "address": address, "workers": self.cfg.workers,
            "mode": self.settings.mode, "rules_version": rules.full_version,
        }})

    @staticmethod
    def _child_exit(_server: Any, worker: Any) -> None:
        # Its counter and histogram files stay: the totals must not go backwards.
        multiprocess.mark_process_dead(worker.pid)

    def _post_worker_init(self, _worker: Any) -> None:
        """After gunicorn set the worker's own signal handlers: add rule reloading, and replay
        whatever the journal holds (also records of a worker that died)."""
        self.app.extensions["spinehip"].store.replayer.ensure_running()
        rules = self.app.extensions["spinehip"].rules
        rules.check_for_changes()  # catch up with edits made since the master loaded the rules
        if self.settings.rules_watch_s > 0:
            rules.start_watching(self.settings.rules_watch_s)
        install_sighup(rules)

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:
            log.error("gunicorn failed: %s", exc, extra={"fields": {"event": "startup_failed"}})
            raise SystemExit(1) from exc


def run_gunicorn(*, host: str, port: int, workers: int, timeout: int) -> int:
    """Build the app (failing fast on bad hooks, rules or settings), then serve it."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    app = create_app(settings)
    _Gunicorn(
        app,
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "timeout": timeout,
            # SIGTERM: finish the calls in flight, then exit (the journal is already on disk).
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
        },
    ).run()
    return 0
