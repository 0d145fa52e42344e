"""Spent JWT ids, shared by every replica through the database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from service.store.schema import SeenToken
from service.store.writes import insert_once


def remember_jti(engine: Engine, jti: str, expires_at: datetime) -> bool:
    """Record a JWT id; False when any replica has already seen it (a replay).

    The id is stored as a digest: ids may be long or hold characters (NUL) PostgreSQL refuses.
    """
    tokens = SeenToken.__table__
    with engine.begin() as connection:
        connection.execute(delete(tokens).where(tokens.c.expires_at <= datetime.now(UTC)))
    with engine.begin() as connection:
        inserted = connection.execute(
            insert_once(connection, tokens, "jti", "jti"),
            {"jti": hashlib.sha256(jti.encode()).hexdigest(), "expires_at": expires_at},
        ).first()
    return inserted is not None
