"""Inserts that a replay may repeat: a row whose unique key is already there is skipped."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_once(connection: Connection, table: Table, key: str, returning: str) -> Any:
    """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING returning`` for this connection's
    database: a row is returned only when it was inserted."""
    return _insert_once(connection.dialect.name == "postgresql", table, key, returning)


@lru_cache(maxsize=16)
def _insert_once(postgres: bool, table: Table, key: str, returning: str) -> Any:
    # Built once per table: the audit insert runs on every hook call, and building the
    # statement cost as much as running it.
    dialect = postgresql if postgres else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[returning])
