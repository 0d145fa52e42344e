"""SQLite runs in the calling thread, and its bound still holds: a statement that runs too long is
interrupted at the bound, a lock met late waits only for the time the operation has left, and
work inside the bound is answered as usual."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from service.store import DatabaseUnavailable
from service.store.bounded import Bounded
from service.store.database import BUSY_SLACK_MS, engine_for
from service.store.statements import compiled, fetch
from tests.support.databases import sqlite_locked

# Counting to a billion takes SQLite well over a minute: only an interruption ends it sooner.
ENDLESS = text("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000)"
               " SELECT count(*) FROM n")
SHORT = text("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000)"
             " SELECT count(*) FROM n")
BOUND_S = 1.0
#: Room for a loaded machine, and still well short of two bounds (a lock wait that restarted its
#: full busy timeout after the operation had already spent most of its bound).
WITHIN_S = 1.6


@pytest.fixture
def engine(tmp_path: Path):
    engine = engine_for(f"sqlite:///{tmp_path / 'store.db'}", BOUND_S)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    engine.dispose()


def query(engine, statement):
    def run():
        with engine.connect() as connection:
            return connection.execute(statement).scalar_one()
    return run


INSERT = text("INSERT INTO t VALUES (1)")
#: How a statement reaches SQLite: through Core, or on the driver's cursor as the hook path's
#: audit insert and snooze look-up do (``store.statements``); the bound must hold on both.
PATHS = ("core", "driver")


def insert_after(engine, pause_s: float, path: str = "core"):
    def run():
        time.sleep(pause_s)  # the operation's own work before it writes
        with engine.begin() as connection:
            if path == "core":
                connection.execute(INSERT)
            else:
                fetch(connection, compiled(INSERT, connection.dialect), {})
        return True
    return run


def test_sqlite_operations_run_in_the_calling_thread(engine) -> None:
    counted = query(engine, SHORT)
    ran_in: list[int] = []

    def run() -> int:
        ran_in.append(threading.get_ident())
        return counted()

    assert Bounded(BOUND_S, inline=True).run("count", run) == 1000
    assert ran_in == [threading.get_ident()]
    assert Bounded(BOUND_S).run("count", run) == 1000  # the pool: another thread
    assert ran_in[1] != threading.get_ident()


def test_a_statement_running_past_the_bound_is_interrupted(engine) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        Bounded(BOUND_S, inline=True).run("count", query(engine, ENDLESS))
    assert time.monotonic() - started < WITHIN_S
    assert caught.value.reason == f"no answer within {BOUND_S * 1000:.0f} ms"


def test_the_interruption_comes_at_the_operations_own_deadline(engine) -> None:
    """Not at the engine's bound: an operation given longer runs its statement that long."""
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        Bounded(BOUND_S * 3, inline=True).run("count", query(engine, ENDLESS))
    assert time.monotonic() - started >= BOUND_S * 3


@pytest.mark.parametrize("path", PATHS)
def test_a_lock_met_late_waits_only_for_what_is_left(engine, tmp_path: Path, path: str) -> None:
    with sqlite_locked(tmp_path / "store.db"):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            Bounded(BOUND_S, inline=True).run("write", insert_after(engine, BOUND_S * 0.8, path))
        assert time.monotonic() - started < WITHIN_S


@pytest.mark.parametrize("path", PATHS)
def test_a_write_inside_the_bound_lands(engine, path: str) -> None:
    assert Bounded(BOUND_S, inline=True).run("write", insert_after(engine, BOUND_S * 0.2, path))
    assert query(engine, text("SELECT count(*) FROM t"))() == 1


def test_the_breaker_opens_after_an_interrupted_operation(engine) -> None:
    bounded = Bounded(BOUND_S, inline=True, cooldown_s=60)
    with pytest.raises(DatabaseUnavailable):
        bounded.run("count", query(engine, ENDLESS))
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        bounded.run("count", query(engine, SHORT))
    assert "not retried yet" in caught.value.reason and time.monotonic() - started < 0.5
    assert bounded.run("ping", query(engine, SHORT), probe=True) == 1000  # a probe closes it


def test_the_store_runs_sqlite_inline_and_postgresql_on_threads(tmp_path: Path) -> None:
    from service.store import Store

    sqlite = Store.from_url(f"sqlite:///{tmp_path / 's.db'}")
    postgres = Store.from_url("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert sqlite._bounded.inline and not postgres._bounded.inline
    finally:
        sqlite.close()
        postgres.close()


@contextmanager
def locked_for(path: Path, hold_s: float) -> Iterator[None]:
    """Another process holds the write lock for ``hold_s`` from now, then lets go by itself."""
    held = threading.Event()

    def hold() -> None:
        with sqlite_locked(path):
            held.set()
            time.sleep(hold_s)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        yield
    finally:
        holder.join(30)


def insert_now(engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))


def test_outside_an_operation_a_lock_is_waited_for_as_the_engine_says(engine, tmp_path: Path) -> None:
    """A write outside any operation (the journal's replay) waits out a lock shorter than the
    engine's busy timeout."""
    with locked_for(tmp_path / "store.db", BOUND_S / 2):
        insert_now(engine)
    assert query(engine, text("SELECT count(*) FROM t WHERE x = 2"))() == 1


def test_an_operations_time_left_does_not_outlive_it(engine, tmp_path: Path) -> None:
    """The operation met a lock with little time left, on a pooled connection; the next write on
    that connection, outside any operation, still waits as the engine says."""
    with sqlite_locked(tmp_path / "store.db"), pytest.raises(DatabaseUnavailable):
        Bounded(BOUND_S, inline=True).run("write", insert_after(engine, BOUND_S * 0.9))
    with locked_for(tmp_path / "store.db", BOUND_S / 2):
        insert_now(engine)
    assert query(engine, text("SELECT count(*) FROM t WHERE x = 2"))() == 1


def traced_engine(path: Path) -> tuple[Engine, list[str]]:
    """An engine whose connections report every statement SQLite runs."""
    engine = engine_for(f"sqlite:///{path}", BOUND_S)
    ran: list[str] = []
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(ran.append))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    return engine, ran


def cuts(ran: list[str]) -> list[str]:
    return [s for s in ran if s.startswith("PRAGMA busy_timeout =")]


@pytest.mark.parametrize("path", PATHS)
def test_calls_in_a_row_share_one_busy_timeout(tmp_path: Path, path: str) -> None:
    """Setting the busy timeout is a statement of its own: while the one in force is within the
    time left, the statements of one call and of the calls after it keep it."""
    engine, ran = traced_engine(tmp_path / "store.db")
    bounded = Bounded(BOUND_S, inline=True)
    try:
        for _ in range(5):
            bounded.run("write", insert_after(engine, 0, path))
            bounded.run("read", query(engine, text("SELECT count(*) FROM t")))
        assert len(cuts(ran)) == 1
        assert query(engine, text("SELECT count(*) FROM t"))() == 5  # outside a call: reset
        assert cuts(ran)[-1] == f"PRAGMA busy_timeout = {round(BOUND_S * 1000)}"
    finally:
        engine.dispose()


def test_a_statement_late_in_its_call_gets_a_shorter_busy_timeout(tmp_path: Path) -> None:
    """The twin of the test above: once the time left is below the timeout in force, it is cut
    again, to no more than what is left."""
    engine, ran = traced_engine(tmp_path / "store.db")
    bounded = Bounded(BOUND_S, inline=True)
    try:
        bounded.run("write", insert_after(engine, 0))
        bounded.run("write", insert_after(engine, BOUND_S * 0.5))
        first, second = (int(s.rsplit("=", 1)[1]) for s in cuts(ran))
        assert BOUND_S * 1000 - BUSY_SLACK_MS <= first <= BOUND_S * 1000
        assert second <= BOUND_S * 500
    finally:
        engine.dispose()
