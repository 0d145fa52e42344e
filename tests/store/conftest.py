"""Store fixtures: every store test runs on SQLite and on the PostgreSQL server ``make test`` starts.

The PostgreSQL variant skips on a developer machine without ``SPINEHIP_TEST_PG_URL`` but fails in
CI, where an unset URL means the server was never started and the tests would prove nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.store import AuditPolicy, DecisionRecord, Faults, FeedbackReceipt, InvocationRecord, Store

PG_URL_ENV = "SPINEHIP_TEST_PG_URL"
TEST_BOUND_S = 10.0
DATA = Path(__file__).parent / "data"


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


def feedback_item(name: str, **changes: Any) -> dict[str, Any]:
    """A feedback item from ``data/feedback.json`` with some fields replaced."""
    items = json.loads((DATA / "feedback.json").read_text())
    return {**items[name], **changes}


CARD = "0b6f6a52-5f0e-4d0c-9d8e-3f4f8e2c1a01"
SUGGESTION = "5d3c1b0e-2a44-4b7e-8e0a-7c1f3e9b2d11"
SERVICE = "spinehip-order-select"
ISSUER = "https://ehr-north.example.org"
TENANT = "clinic-north"
REASON_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/override-reason"
#: What the audited card offered, as the store records it.
OFFERED_REASONS = (f"{REASON_SYSTEM}|snooze-30d", f"{REASON_SYSTEM}|disagree")


def send(store: Store, *items: dict[str, Any], service: str = SERVICE, issuer: str | None = ISSUER,
         tenant: str | None = TENANT) -> FeedbackReceipt:
    """Feedback as the client that received the cards of :func:`invocation` posts it."""
    return store.record_feedback(service, list(items), issuer=issuer, tenant=tenant)


def invocation(patient_id: str = "patient-ces-1", **changes: object) -> InvocationRecord:
    fields: dict[str, object] = {
        "service_id": SERVICE,
        "hook": "order-select",
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "ruleset_version": "2026.11.0",
        "evaluation_ms": 14.5,
        "patient_id": patient_id,
        "user_id": "Practitioner/example",
        "issuer": ISSUER,
        "tenant": TENANT,
        "at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        "decisions": (
            DecisionRecord(
                rule_id="cauda-equina",
                indicator="critical",
                mode="active",
                card_uuid=CARD,
                suggestion_uuids=(SUGGESTION,),
                summary="Possible cauda equina syndrome",
                override_reasons=OFFERED_REASONS,
                evidence=("Observation/saddle-numbness",),
                sources=("ACR Low Back Pain",),
            ),
            DecisionRecord(rule_id="spine-pattern-mri", indicator="info", mode="shadow"),
        ),
    }
    fields.update(changes)
    return InvocationRecord(**fields)  # type: ignore[arg-type]
