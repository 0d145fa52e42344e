"""The statements of every hook call, run on the driver's cursor of a Core connection.

The audit insert and the snooze look-up run on every call. Core builds and compiles each once
per dialect, types included; what is skipped is Core's work on each execution (the execution
context, result metadata), which cost more than the database's own work. The connection, its
transaction and its pool stay Core's; a driver error is raised as Core would raise it, so the
store's fault handling sees no difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from service.store.database import before_statement

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Compiled:
    """A statement's text for one dialect, and how to pass it a row of values."""

    sql: str
    names: tuple[str, ...]  # the bound values, in the order a positional driver takes them
    processors: tuple[Processor, ...]  # each value's type conversion, or None
    positional: bool

    def bind(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        bound = [values[name] if process is None else process(values[name])
                 for name, process in zip(self.names, self.processors, strict=True)]
        return bound if self.positional else dict(zip(self.names, bound, strict=True))


@lru_cache(maxsize=32)
def compiled(statement: ClauseElement, dialect: Dialect, columns: tuple[str, ...] | None = None) -> Compiled:
    """``statement`` compiled for ``dialect``; an INSERT sets exactly ``columns``."""
    result = statement.compile(dialect=dialect, column_keys=list(columns) if columns else None)
    names = tuple(result.positiontup) if result.positional else tuple(result.binds)
    processors = tuple(result.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                       for name in names)
    return Compiled(result.string, names, processors, result.positional)


def fetch(connection: Connection, statement: Compiled, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run ``statement`` once; its rows (none for a statement that returns none)."""
    def once(cursor: Any) -> list[tuple[Any, ...]]:
        cursor.execute(statement.sql, statement.bind(values))
        return cursor.fetchall() if cursor.description else []

    return _run(connection, statement, values, once)


def execute_many(connection: Connection, statement: Compiled, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per row, in one driver call."""
    def each(cursor: Any) -> None:
        cursor.executemany(statement.sql, [statement.bind(row) for row in rows])

    _run(connection, statement, rows, each)


def _run(connection: Connection, statement: Compiled, values: Any, work: Callable[[Any], Any]) -> Any:
    dialect = connection.dialect
    driver = connection.connection
    cursor = None
    try:
        cursor = driver.cursor()
        before_statement(connection, cursor)
        return work(cursor)
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, driver.dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(statement.sql, values, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, connection_invalidated=lost,
                                  dialect=dialect) from exc
    finally:
        if cursor is not None and not connection.invalidated:
            cursor.close()
