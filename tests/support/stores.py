"""Store fixtures: every store test runs on SQLite and on the PostgreSQL server ``make test`` starts.

The PostgreSQL variant skips on a developer machine without ``SPINEHIP_TEST_PG_URL`` but fails in
CI, where an unset URL means the server was never started and the tests would prove nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.store import AuditPolicy, Faults, Store

PG_URL_ENV = "SPINEHIP_TEST_PG_URL"
TEST_BOUND_S = 10.0


def pg_server_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{PG_URL_ENV} is not set in CI: run the suite through `make test`")
    pytest.skip(f"{PG_URL_ENV} not set (`make test` starts PostgreSQL and sets it)")


@contextmanager
def fresh_pg_database(prefix: str = "test") -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    server = make_url(pg_server_url())
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
def policy() -> AuditPolicy:
    return AuditPolicy(patient_id="hash", secret="test-secret", snooze_reasons={"snooze-30d": 30})


@pytest.fixture
def faults(tmp_path: Path) -> Faults:
    """A journal of the test's own, and a bound no loaded test machine reaches: these tests are
    about what is stored, not about faults (tests/faults)."""
    return Faults(bound_s=TEST_BOUND_S, journal_dir=tmp_path / "journal")


@pytest.fixture
def store(database_url: str, policy: AuditPolicy, faults: Faults) -> Iterator[Store]:
    store = Store.from_url(database_url, policy, faults)
    store.migrate()
    yield store
    store.close()
