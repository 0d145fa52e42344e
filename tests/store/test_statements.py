"""The hook path's statements on the driver's cursor behave as Core's own: the same rows and the
same exceptions, on SQLite and on PostgreSQL (the bound on a SQLite lock: test_sqlite_deadline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from service.store import DecisionRecord, Store
from service.store.bounded import DATABASE_FAULTS
from service.store.database import engine_for
from service.store.feedback import _SNOOZED
from service.store.invocations import _DECISIONS
from service.store.schema import Decision, Snooze
from service.store.statements import compiled, execute_many, fetch
from tests.support.databases import sqlite_locked
from tests.support.store_records import CARD, OFFERED_REASONS, SUGGESTION, invocation

PATIENT_KEY = "k" * 64
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def decision_row(invocation_id: int, card_uuid: str) -> dict:
    return {"invocation_id": invocation_id, "rule_id": "cauda-equina", "indicator": "critical",
            "mode": "active", "card_uuid": card_uuid, "suggestion_uuids": ["s-1"],
            "summary": "Possible cauda equina syndrome", "evidence": ["Observation/o-1"],
            "sources": ["NICE NG59"], "override_reasons": ["urn:x|snooze-30d"]}


def snooze(store: Store, until: datetime, issuer: str = "") -> None:
    with store.engine.begin() as connection:
        connection.execute(Snooze.__table__.insert(), {
            "issuer": issuer, "tenant": "", "patient_key": PATIENT_KEY, "rule_id": "R5",
            "until": until, "card_uuid": f"card-{until.isoformat()}-{issuer}", "reason_code": "snooze-30d",
            "created_at": NOW})


def test_the_snooze_look_up_finds_running_snoozes_of_this_client_only(store: Store) -> None:
    snooze(store, NOW + timedelta(days=1))
    snooze(store, NOW - timedelta(seconds=1))  # over
    snooze(store, NOW + timedelta(days=1), issuer="https://other.example")
    values = {"patient_key": PATIENT_KEY, "issuer": "", "tenant": "", "now": NOW}
    with store.engine.connect() as connection:
        rows = fetch(connection, compiled(_SNOOZED, connection.dialect), values)
        core = connection.execute(_SNOOZED, values).all()
    assert rows == [("R5",)] and [tuple(row) for row in core] == rows


def test_json_columns_read_back_through_core_as_written(store: Store) -> None:
    store.record_invocation(invocation())
    with store.engine.connect() as connection:
        [stored] = connection.execute(select(Decision).where(Decision.card_uuid == CARD)).mappings().all()
    assert stored["suggestion_uuids"] == [SUGGESTION]
    assert stored["evidence"] == ["Observation/saddle-numbness"]
    assert stored["override_reasons"] == list(OFFERED_REASONS)


def test_a_driver_error_is_raised_as_core_raises_it(store: Store) -> None:
    store.record_invocation(invocation())
    with store.engine.connect() as connection:
        [invocation_id] = connection.execute(
            select(Decision.invocation_id).where(Decision.card_uuid == CARD)).scalars().all()
    row = decision_row(invocation_id, CARD)  # card_uuid is unique
    statement = compiled(_DECISIONS, store.engine.dialect, tuple(row))
    with store.engine.connect() as connection, pytest.raises(IntegrityError) as driver:
        execute_many(connection, statement, [row])
    with store.engine.connect() as connection, pytest.raises(IntegrityError) as core:
        connection.execute(_DECISIONS, [row])
    assert type(driver.value) is type(core.value) and type(driver.value.orig) is type(core.value.orig)
    assert "Possible cauda equina" not in str(driver.value)  # values are not echoed into logs


def test_a_locked_sqlite_file_is_the_operational_error_core_raises(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'store.db'}", 0.3)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    insert = compiled(text("INSERT INTO t VALUES (:x)"), engine.dialect)
    with engine.begin() as connection:
        fetch(connection, insert, {"x": 1})  # twin: unlocked, the row lands
    with sqlite_locked(tmp_path / "store.db"), engine.begin() as connection, \
            pytest.raises(OperationalError) as caught:
        fetch(connection, insert, {"x": 2})
    assert isinstance(caught.value, DBAPIError) and "locked" in str(caught.value.orig)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT x FROM t")).scalars().all() == [1]
    engine.dispose()


def test_a_connection_closed_under_the_pool_is_a_core_error_the_store_survives(store: Store) -> None:
    """Whatever the driver refuses, at the cursor or at the statement, reaches the store as one
    of the database faults it turns into DatabaseUnavailable (cards shown, audit journalled)."""
    values = {"patient_key": PATIENT_KEY, "issuer": "", "tenant": "", "now": NOW}
    with store.engine.connect() as connection:
        assert fetch(connection, compiled(_SNOOZED, connection.dialect), values) == []  # twin
    with store.engine.connect() as connection:
        connection.connection.dbapi_connection.close()
        with pytest.raises(DBAPIError) as caught:
            fetch(connection, compiled(_SNOOZED, connection.dialect), values)
        assert isinstance(caught.value, DATABASE_FAULTS) and connection.invalidated


@pytest.mark.parametrize("evidence", ["Observation/plain", "Observation/\ud800-lone-surrogate"])
def test_an_audit_record_any_python_string_can_hold_is_stored(store: Store, evidence: str) -> None:
    """JSON columns take what Python's JSON encoder takes, as Core wrote them before."""
    assert store.record_invocation(invocation(decisions=(DecisionRecord(
        "cauda-equina", "critical", card_uuid=f"card-{len(evidence)}", evidence=(evidence,)),)))
    with store.engine.connect() as connection:
        assert connection.execute(select(Decision.evidence)).scalars().all() == [[evidence]]
