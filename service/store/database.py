"""Engines with bounded waits, schema migration and the readiness ping, on SQLite or PostgreSQL.

Every wait an engine can make is capped by ``bound_s``: SQLite's busy timeout, PostgreSQL's
statement timeout and the pool checkout. libpq cannot wait less than 2 s for a connection, and a
server that stops answering mid-query holds a socket read forever, so the hook path also runs each
operation under a wall-clock limit (:mod:`service.store.bounded`). Inside such an operation a
SQLite statement waits for a lock only as long as the operation has left, and is interrupted
when its deadline passes.
"""

from __future__ import annotations

import fcntl
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from service.jsontext import json_text
from service.store.bounded import DEADLINE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every replica that migrates at startup.
MIGRATION_LOCK_ID = 0x5350_4950
# Migrations and reports are not on the hook path: they may wait for locks as long as they need.
UNBOUNDED_BUSY_S = 30.0
PG_MIN_CONNECT_TIMEOUT_S = 2  # libpq's floor; the wall-clock bound covers the rest


def engine_for(url: str, bound_s: float | None = None) -> Engine:
    """An engine for ``sqlite:///path`` (parent directory created) or a PostgreSQL URL.

    ``bound_s`` caps lock, statement and pool waits; None leaves them at the engine's defaults.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {url!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        # Plain postgresql:// would pick psycopg2, which is not a dependency; psycopg 3 is.
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {} if bound_s is None else {"pool_timeout": bound_s}
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        busy_s = UNBOUNDED_BUSY_S if bound_s is None else bound_s
        # A connection to a local file costs a file handle and no server's slot, and each thread
        # that calls hooks keeps one (store.held): the pool never makes a thread wait for one.
        engine = create_engine(parsed, connect_args={"timeout": busy_s}, json_serializer=json_text,
                               max_overflow=-1, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _sqlite_wait_no_longer_than_left)
        return engine
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    connect: dict[str, Any] = {}
    if bound_s is not None:
        connect = {
            "connect_timeout": PG_MIN_CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={max(1, round(bound_s * 1000))}"
            f" -c lock_timeout={max(1, round(bound_s * 1000))}",
            # A server that vanished without closing the socket is noticed within seconds.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": 10_000,
        }
        connect = {k: v for k, v in connect.items() if k not in parsed.query}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect, json_serializer=json_text,
                         **options)


#: WAL pages written before a commit copies them into the database file (SQLite's default is
#: 1 000). Each call's audit write adds about ten pages, mostly the same few B-tree leaves; a copy
#: writes each page once however often it changed, and costs two fsyncs, during which that worker
#: answers no one. The WAL then peaks near 40 MB; SQLite keeps its file at that size for reuse.
WAL_CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    """WAL lets readers and the one writer of several workers proceed together; NORMAL sync is
    durable across application crashes, and an audit write per request then costs no fsync."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    record.info[ENGINE_BUSY_MS] = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
    cursor.close()
    dbapi_connection.set_progress_handler(_past_deadline, SQLITE_PROGRESS_STEPS)


#: Virtual-machine steps between deadline checks: a few microseconds of SQLite work.
SQLITE_PROGRESS_STEPS = 10_000
#: Keys of a pooled connection's info: the busy timeout its engine gave it, and the one an
#: operation's time left put in its place (ms), if any.
ENGINE_BUSY_MS, BUSY_CUT = "spinehip_engine_busy_ms", "spinehip_busy_cut"
#: How much shorter than the time left a statement's busy timeout may be: a lock is then given
#: up at most this much before the operation's deadline.
BUSY_SLACK_MS = 50


def _past_deadline() -> bool:
    """SQLite's progress handler: a true answer interrupts the running statement."""
    return time.monotonic() > DEADLINE.get()


def before_statement(connection: Connection, cursor: Any) -> None:
    """What Core does before each statement it runs, for a statement run on the driver's own
    cursor (``store.statements``)."""
    if connection.dialect.name == "sqlite":
        _sqlite_wait_no_longer_than_left(connection, cursor)


def _sqlite_wait_no_longer_than_left(conn: Any, cursor: Any, *_args: Any) -> None:
    """Inside a bounded operation, the statement's busy timeout is at most the time the operation
    has left (and at most :data:`BUSY_SLACK_MS` less), so a lock met late cannot stretch the
    operation past its bound. Setting it is a statement of its own: a setting that still fits is
    kept, so the statements of one call, and of the calls after it, mostly share one. The
    connection goes back to the pool with that cut, so a statement outside any operation (the
    journal's replay) first gets the engine's own timeout back."""
    deadline = DEADLINE.get()
    in_force = conn.info.get(BUSY_CUT)
    if deadline != math.inf:
        left_ms = max(1, int((deadline - time.monotonic()) * 1000))
        if in_force is None or not left_ms - BUSY_SLACK_MS <= in_force <= left_ms:
            cut = max(1, left_ms - BUSY_SLACK_MS // 2)
            cursor.connection.execute(f"PRAGMA busy_timeout = {cut}")
            conn.info[BUSY_CUT] = cut
    elif in_force is not None:
        cursor.connection.execute(f"PRAGMA busy_timeout = {conn.info[ENGINE_BUSY_MS]}")
        del conn.info[BUSY_CUT]


@contextmanager
def _file_lock(path: str | None) -> Iterator[None]:
    """An exclusive lock beside a SQLite file, so processes starting together migrate in turn."""
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; replicas starting together take turns.

    Runs on an engine of its own without the hook path's bounds: a migration may wait its turn.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    sqlite_file = engine.url.database if engine.dialect.name == "sqlite" else None
    unbounded = engine_for(engine.url.render_as_string(hide_password=False))
    try:
        with _file_lock(sqlite_file), unbounded.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        unbounded.dispose()


def ping(engine: Engine) -> None:
    """Raise when the database cannot be reached; readiness depends on it."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def has_schema(engine: Engine) -> bool:
    """True once migrations have run; read-only commands check before they query."""
    return inspect(engine).has_table("decisions")
