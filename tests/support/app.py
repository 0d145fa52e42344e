"""The service as the tests build it: the real app factory, with the bundled rules compiled once
and the store's schema migrated once per run."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url

from service.app import create_app
from service.config import Settings
from service.store import Faults, Store
from tests.support.rules import RULES_DIR, bundled_ruleset


@cache
def migrated_sqlite() -> Path:
    """An empty SQLite store at the newest schema revision, made on first use; each app gets a
    copy of the file, so tests share the migration's cost but never each other's rows."""
    directory = Path(tempfile.mkdtemp(prefix="spinehip-schema-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    store = Store.from_url(f"sqlite:///{directory / 'store.db'}", faults=Faults(journal_dir=directory))
    try:
        store.migrate()
    finally:
        store.close()
    return directory / "store.db"


def new_sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL that names a file not yet there, else None."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


def make_app(settings: Settings, **kwargs: Any) -> Flask:
    """``create_app(settings)``, handed the shared compiled rules when the settings name the
    bundled rules directory, and a store copied from the migrated schema when they name a new
    SQLite file. A test with rules or a database of its own gets them built as the service
    builds them."""
    if settings.rules_dir.resolve() == RULES_DIR.resolve():
        kwargs.setdefault("ruleset", bundled_ruleset(settings.snooze_reasons))
    target = new_sqlite_file(settings.database_url)
    if "store" not in kwargs and target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite(), target)
        kwargs["store"] = Store.from_settings(settings)
    return create_app(settings, **kwargs)
