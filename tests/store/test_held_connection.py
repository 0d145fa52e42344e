"""The hook path's operations run on one connection per thread on SQLite, and on a pooled one
on PostgreSQL; what they read is always what other workers committed, and a connection that saw
a failure is never used again."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, func, insert, select

from service.store import AuditPolicy, Faults, Store, held
from service.store.bounded import COOLDOWN_S
from service.store.records import DecisionRecord
from service.store.schema import Invocation, Snooze
from tests.support.databases import sqlite_locked
from tests.support.store_records import ISSUER, TENANT, invocation

PATIENT = "patient-held-1"


def hook_call(store: Store) -> tuple[set[str], bool]:
    """What a hook call asks of the store: the snoozes, then the audit write."""
    snoozes = store.snoozed_rules(store.patient_key(PATIENT), issuer=ISSUER, tenant=TENANT)
    card = DecisionRecord(rule_id="cauda-equina", indicator="critical", mode="active",
                          card_uuid=str(uuid.uuid4()))
    return snoozes, store.record_invocation(invocation(PATIENT, decisions=(card,)))


def checkouts(store: Store, *threads: int, pool: bool = False) -> list[object]:
    """The DBAPI connection of every checkout from the store's pool from now on, by ``threads``
    (this one when none is named), or by the store's database threads (``pool``, PostgreSQL):
    the journal's replayer takes connections of its own."""
    seen: list[object] = []
    wanted = set(threads) or {threading.get_ident()}

    def taken(dbapi: object, *_: object) -> None:
        thread = threading.current_thread()
        if thread.name.startswith("spinehip-db") if pool else thread.ident in wanted:
            seen.append(dbapi)

    event.listen(store.engine, "checkout", taken)
    return seen


@pytest.fixture
def sqlite_store(tmp_path: Path, policy: AuditPolicy) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'store.db'}", policy,
                           Faults(bound_s=0.5, journal_dir=tmp_path / "journal"))
    store.migrate()
    yield store
    store.close()


def snooze_from_another_worker(store: Store, rule: str) -> None:
    """A snooze committed through an engine of its own, as another worker files one."""
    other = create_engine(store.engine.url)
    with other.begin() as connection:
        connection.execute(insert(Snooze).values(
            issuer=ISSUER, tenant=TENANT, patient_key=store.patient_key(PATIENT), rule_id=rule,
            until=datetime.now(UTC) + timedelta(days=30), card_uuid="card-1",
            reason_code="snooze-30d", created_at=datetime.now(UTC)))
    other.dispose()


def audited(store: Store) -> int:
    """Calls in the audit trail, read through an engine of its own."""
    other = create_engine(store.engine.url)
    with other.connect() as connection:
        count = connection.execute(select(func.count()).select_from(Invocation)).scalar_one()
    other.dispose()
    return count


def test_on_sqlite_a_threads_hook_calls_share_one_connection(sqlite_store: Store) -> None:
    taken = checkouts(sqlite_store)
    for _ in range(5):
        assert hook_call(sqlite_store) == (set(), True)
    assert len(taken) == 1
    assert audited(sqlite_store) == 5


@pytest.mark.postgres
def test_on_postgresql_each_operation_takes_a_pooled_connection(
        pg_database_url: str, policy: AuditPolicy, faults: Faults) -> None:
    """The twin: the pool's pre-ping must see every connection before it is used."""
    store = Store.from_url(pg_database_url, policy, faults)
    store.migrate()
    taken = checkouts(store, pool=True)
    for _ in range(3):
        assert hook_call(store) == (set(), True)
    store.close()
    assert len(taken) == 6


def test_a_snooze_another_worker_files_is_seen_by_the_next_look_up(store: Store) -> None:
    assert hook_call(store) == (set(), True)
    snooze_from_another_worker(store, "cauda-equina")
    assert hook_call(store) == ({"cauda-equina"}, True)


def test_each_thread_holds_its_own_connection(sqlite_store: Store) -> None:
    answers: list[tuple[set[str], bool]] = []
    counted = threading.Barrier(3)  # both threads wait until their checkouts are counted

    def calls() -> None:
        counted.wait()
        answers.extend(hook_call(sqlite_store) for _ in range(3))

    threads = [threading.Thread(target=calls) for _ in range(2)]
    for thread in threads:
        thread.start()
    taken = checkouts(sqlite_store, *(thread.ident or 0 for thread in threads))
    counted.wait()
    for thread in threads:
        thread.join()
    assert answers == [(set(), True)] * 6
    assert len(taken) == 2 and taken[0] is not taken[1]


def test_many_long_lived_threads_each_hold_one_without_exhausting_the_pool(
        sqlite_store: Store) -> None:
    """More threads than the pool's default size and overflow (5 and 10), each still alive
    while the others call: every call is answered and audited."""
    answers: list[tuple[set[str], bool]] = []
    all_called = threading.Barrier(20)

    def call_and_stay() -> None:
        answers.append(hook_call(sqlite_store))
        all_called.wait(timeout=30)

    threads = [threading.Thread(target=call_and_stay) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [(set(), True)] * 20
    assert audited(sqlite_store) == 20


def test_after_a_failure_the_next_operation_takes_a_fresh_connection(
        sqlite_store: Store, tmp_path: Path) -> None:
    taken = checkouts(sqlite_store)
    assert hook_call(sqlite_store) == (set(), True)
    with sqlite_locked(tmp_path / "store.db"):
        assert hook_call(sqlite_store) == (set(), False)  # the write could not lock: journalled
    time.sleep(COOLDOWN_S)  # the breaker lets operations through again
    assert hook_call(sqlite_store) == (set(), True)
    assert len(taken) == 2 and taken[0] is not taken[1]
    with pytest.raises(Exception, match="closed"):
        taken[0].cursor()  # the failed connection was closed, not pooled


def test_a_connection_from_another_process_is_not_used(sqlite_store: Store, monkeypatch) -> None:
    """A forked worker opens its own: a SQLite connection must not cross a fork."""
    taken = checkouts(sqlite_store)
    assert hook_call(sqlite_store) == (set(), True)
    pid = held.os.getpid()
    monkeypatch.setattr(held.os, "getpid", lambda: pid + 1)
    assert hook_call(sqlite_store) == (set(), True)
    assert len(taken) == 2


def test_closing_the_store_closes_the_held_connection(sqlite_store: Store) -> None:
    taken = checkouts(sqlite_store)
    hook_call(sqlite_store)
    sqlite_store.close()
    with pytest.raises(Exception, match="closed"):
        taken[0].cursor()
