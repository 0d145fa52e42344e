"""Inserts that a replay may repeat: a row whose unique key is already there is skipped."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_once(connection: Connection, table: Table, key: str) -> Any:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` for this connection's database."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[key])
