"""Tables of the audit trail, feedback, snoozes and the JWT replay cache.

Migrations in ``migrations/versions`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; SQLite keeps no zone, so it is stripped and restored."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps given to the store must carry a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Invocation(Base):
    """One CDS Hooks call that reached the rule engine."""

    __tablename__ = "invocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Written once per call, also when the record is replayed from the journal: the idempotency key.
    audit_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    service_id: Mapped[str] = mapped_column(String(200))
    hook: Mapped[str] = mapped_column(String(200))
    hook_instance: Mapped[str] = mapped_column(String(200))
    ruleset_version: Mapped[str] = mapped_column(String(100))
    evaluation_ms: Mapped[float] = mapped_column(Float)
    patient_id: Mapped[str | None] = mapped_column(String(200))
    patient_key: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(300))
    issuer: Mapped[str | None] = mapped_column(String(300))
    tenant: Mapped[str | None] = mapped_column(String(200))


class Decision(Base):
    """A rule that fired in one invocation; ``card_uuid`` links feedback back to it."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invocation_id: Mapped[int] = mapped_column(ForeignKey("invocations.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(100), index=True)
    indicator: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(10))
    card_uuid: Mapped[str | None] = mapped_column(String(100), unique=True)
    suggestion_uuids: Mapped[list[str]] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[str]] = mapped_column(JSON)
    sources: Mapped[list[str]] = mapped_column(JSON)
    # The override reasons the card offered, as ``system|code``; None for cards audited before.
    override_reasons: Mapped[list[str] | None] = mapped_column(JSON)


class Feedback(Base):
    """A CDS Hooks Feedback item; ``dedup_key`` makes a resent item a no-op."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    service_id: Mapped[str] = mapped_column(String(200))
    card_uuid: Mapped[str] = mapped_column(String(100), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    outcome_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON)
    reason_system: Mapped[str | None] = mapped_column(String(300))
    reason_code: Mapped[str | None] = mapped_column(String(100))
    reason_display: Mapped[str | None] = mapped_column(String(300))
    comment: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(300))
    issuer: Mapped[str | None] = mapped_column(String(300))
    tenant: Mapped[str | None] = mapped_column(String(200))


class Snooze(Base):
    """A rule silenced for one patient of one client (issuer and tenant) until ``until``, filed by
    the override that asked for it. A call without a client identity has issuer and tenant ``""``."""

    __tablename__ = "snoozes"
    __table_args__ = (Index("ix_snoozes_patient_key_until", "patient_key", "until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300), server_default="")
    tenant: Mapped[str] = mapped_column(String(200), server_default="")
    patient_key: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(100))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    card_uuid: Mapped[str] = mapped_column(String(100))
    reason_code: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SeenToken(Base):
    """JWT ids already accepted, kept until the token would have expired anyway."""

    __tablename__ = "seen_tokens"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
