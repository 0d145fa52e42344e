"""Store fixtures: every store test runs on SQLite and on the PostgreSQL server ``make test`` starts.

The PostgreSQL variant skips on a developer machine without ``SPINEHIP_TEST_PG_URL`` but fails in
CI, where an unset URL means the server was never started and the tests would prove nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.store import AuditPolicy, Store

PG_URL_ENV = "SPINEHIP_TEST_PG_URL"
DATA = Path(__file__).parent / "data"


def pg_server_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{PG_URL_ENV} is not set in CI: run the suite through `make test`")
    pytest.skip(f"{PG_URL_ENV} not set (`make test` starts PostgreSQL and sets it)")


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    server = make_url(pg_server_url())
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
def policy() -> AuditPolicy:
    return AuditPolicy(patient_id="hash", secret="test-secret", snooze_reasons={"snooze-30d": 30})


@pytest.fixture
def store(database_url: str, policy: AuditPolicy) -> Iterator[Store]:
    store = Store.from_url(database_url, policy)
    store.migrate()
    yield store
    store.close()


def feedback_item(name: str, **changes: Any) -> dict[str, Any]:
    """A feedback item from ``data/feedback.json`` with some fields replaced."""
    items = json.loads((DATA / "feedback.json").read_text())
    return {**items[name], **changes}
