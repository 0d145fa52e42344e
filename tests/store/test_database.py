"""Connecting, migrating and readiness on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from service.store import Store
from service.store.database import WAL_CHECKPOINT_PAGES, engine_for
from service.store.schema import Base


def test_migrations_create_exactly_the_tables_the_models_describe(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migrating_twice_changes_nothing(store: Store) -> None:
    before = sorted(inspect(store.engine).get_table_names())
    store.migrate()
    assert sorted(inspect(store.engine).get_table_names()) == before
    assert "alembic_version" in before


@pytest.mark.postgres
def test_replicas_migrating_at_the_same_moment_both_succeed(pg_database_url: str) -> None:
    stores = [Store.from_url(pg_database_url) for _ in range(2)]
    errors: list[BaseException] = []

    def migrate(store: Store) -> None:
        try:
            store.migrate()
        except BaseException as error:  # collected so the main thread can report it
            errors.append(error)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in stores:
        store.ping()
        store.close()
    assert errors == []


def test_sqlite_url_creates_the_missing_parent_directory(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'audit.db'}")
    store.migrate()
    store.ping()
    store.close()
    assert (tmp_path / "nested" / "dir" / "audit.db").is_file()


def test_sqlite_connections_copy_the_wal_back_every_few_thousand_calls(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'store.db'}", 1.0)
    with engine.connect() as connection:
        pragmas = [connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                   for name in ("journal_mode", "synchronous", "wal_autocheckpoint")]
    engine.dispose()
    assert pragmas == ["wal", 1, WAL_CHECKPOINT_PAGES]  # synchronous 1 is NORMAL


def test_ping_raises_when_the_database_cannot_be_reached() -> None:
    store = Store.from_url("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(OperationalError):
        store.ping()
    store.close()


def test_plain_postgresql_url_uses_psycopg_3() -> None:
    store = Store.from_url("postgresql://user@127.0.0.1:5432/db")
    assert store.engine.dialect.driver == "psycopg"
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "not a database URL"), ("mysql://u@h/db", "unsupported database")],
)
def test_bad_database_url_is_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Store.from_url(url)
