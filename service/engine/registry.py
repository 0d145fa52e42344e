"""The rule set currently serving, swapped whole and only for a set that validated.

Admins edit files under ``rules/`` while the service runs. A reload (file watch, SIGHUP or the
admin endpoint) compiles the new set off to the side; only a set that loads without error
replaces the current one, in one attribute assignment, so a request sees either the old set or
the new one, never a mix. A bad set is logged and kept as ``last_error`` for /readyz.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.engine.ruleset import RuleSet, load_ruleset
from service.yamlsource import ConfigError, ConfigFileError, logical_name, source_files

log = logging.getLogger(__name__)

# A message quotes what the admin wrote (a key, a tag); /readyz shows that much of it.
MAX_SHOWN_MESSAGE = 300


def _fingerprint(rules_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of every rule file, seen as the loader sees them: cheap to poll,
    changes on any edit or rename (a ConfigMap update re-points the symlinks at new files)."""
    try:
        sources = source_files(rules_dir)
    except ConfigFileError:
        return ()  # the reload reports the problem
    out = []
    for source in sources:
        try:
            stat = source.path.stat()
        except OSError:
            continue
        out.append((source.name, stat.st_mtime_ns, stat.st_size))
    return tuple(out)


class RuleRegistry:
    """Holds the serving RuleSet; the first load must succeed or the service does not start."""

    def __init__(self, rules_dir: Path | str,
                 loader: Callable[[Path], RuleSet] = load_ruleset,
                 on_reload: Callable[[bool], None] | None = None,
                 initial: RuleSet | None = None):
        self.rules_dir = Path(rules_dir)
        self.loader = loader  # also what the workbench tries an edit with
        self._on_reload = on_reload  # told of every reload's result (metrics), engine stays pure
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = _fingerprint(self.rules_dir)
        # A set compiled by the caller from these files, or loaded now (ConfigFileError if bad).
        self._current: RuleSet = initial if initial is not None else loader(self.rules_dir)
        self.last_error: list[ConfigError] | None = None
        self.loaded_at = datetime.now(UTC)

    @property
    def current(self) -> RuleSet:
        return self._current

    def reload(self) -> bool:
        """Validate the files now on disk; swap them in if valid. True when swapped."""
        with self._lock:
            self._seen = _fingerprint(self.rules_dir)
            try:
                new = self.loader(self.rules_dir)
            except ConfigFileError as exc:
                self.last_error = exc.errors
                log.error("rule reload rejected (%d errors); still serving %s:\n%s",
                          len(exc.errors), self._current.full_version, exc)
                if self._on_reload:
                    self._on_reload(False)
                return False
            old = self._current.full_version
            self._current = new
            self.last_error = None
            self.loaded_at = datetime.now(UTC)
            log.info("rules reloaded: %s -> %s", old, new.full_version)
            if self._on_reload:
                self._on_reload(True)
            return True

    def status(self) -> dict[str, Any]:
        """What /readyz shows about the rules. Anyone may ask, every few seconds: a rejected
        set is summed up as its error count and first error, named within the rules tree, so
        the answer stays small and tells no server path; the admin reload gives the list."""
        out: dict[str, Any] = {"version": self._current.full_version,
                               "loadedAt": self.loaded_at.isoformat()}
        if self.last_error:
            out["lastError"] = {"count": len(self.last_error),
                                "first": self._public(self.last_error[0])}
        return out

    def _public(self, error: ConfigError) -> dict[str, Any]:
        path = Path(error.file)
        inside = path.is_relative_to(self.rules_dir)
        name = logical_name(path.relative_to(self.rules_dir).as_posix()) if inside else path.name
        return {"file": name, "line": error.line, "column": error.column,
                "message": error.message[:MAX_SHOWN_MESSAGE]}

    def check_for_changes(self) -> bool:
        """Reload if any file changed since the last look; True when a new set was swapped in."""
        if _fingerprint(self.rules_dir) == self._seen:
            return False
        return self.reload()

    def start_watching(self, interval_s: float = 2.0) -> None:
        """Poll file times in a daemon thread (works on every filesystem, including ConfigMaps)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.check_for_changes()
                except Exception:  # the watcher must outlive any surprise in one reload
                    log.exception("rule file watch failed; will retry")

        self._thread = threading.Thread(target=run, name="rules-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def install_sighup(registry: RuleRegistry) -> None:
    """Reload the rules on SIGHUP (main thread only, as Python requires for signal handlers)."""

    def handler(signum: int, frame: Any) -> None:
        # Reload off the signal frame so a slow load never runs inside the interrupted code.
        threading.Thread(target=registry.reload, name="rules-sighup", daemon=True).start()

    signal.signal(signal.SIGHUP, handler)
