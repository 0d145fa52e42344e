"""The database behind feedback, audit, snoozes and replay protection, shared by every replica."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.store.policy import AuditPolicy
from service.store.records import InvocationRecord
from service.store.schema import Decision, Feedback, Invocation, SeenToken, Snooze

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every replica that migrates at startup.
MIGRATION_LOCK_ID = 0x5350_4950


@dataclass(frozen=True)
class DecisionActivity:
    """One audited decision with the evaluation time of its call, for the report."""

    rule_id: str
    mode: str
    card_uuid: str | None
    evaluation_ms: float


@dataclass(frozen=True)
class FeedbackActivity:
    """One feedback item joined to the rule whose card it answers."""

    rule_id: str
    card_uuid: str
    outcome: str
    outcome_at: datetime
    reason_code: str | None
    reason_display: str | None


def engine_for(url: str) -> Engine:
    """An engine for ``sqlite:///path`` (parent directory created) or a PostgreSQL URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {url!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        # Plain postgresql:// would pick psycopg2, which is not a dependency; psycopg 3 is.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and the one writer of several workers proceed together; NORMAL sync is
    durable across application crashes, and an audit write per request then costs no fsync."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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


def _instant(value: str | datetime) -> datetime:
    """A feedback timestamp as an aware UTC datetime; a zone-less one is taken as UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _feedback_key(card: str, outcome: str, at: datetime, suggestions: Iterable[str]) -> str:
    identity = [card, outcome, at.isoformat(), sorted(suggestions)]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


class Store:
    """Feedback, audit trail, snoozes and seen JWT ids in one SQL database."""

    def __init__(self, engine: Engine, policy: AuditPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or AuditPolicy()
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, policy: AuditPolicy | None = None) -> Store:
        return cls(engine_for(url), policy)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls.from_url(settings.database_url, AuditPolicy.from_settings(settings))

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        """Bring the schema to the newest revision; replicas starting together take turns."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        sqlite_file = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        with _file_lock(sqlite_file), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        """Raise when the database cannot be reached; readiness depends on it."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def has_schema(self) -> bool:
        """True once migrations have run; read-only commands check before they query."""
        return inspect(self.engine).has_table("decisions")

    def patient_key(self, patient_id: str | None) -> str | None:
        return self.policy.patient_key(patient_id)

    def record_invocation(self, record: InvocationRecord) -> None:
        """Audit one call and every decision in it, returned or shadow.

        Runs on every hook call, so it is two Core statements in one transaction, not ORM units of
        work.
        """
        invocations, decisions = Invocation.__table__, Decision.__table__
        with self.engine.begin() as connection:
            invocation_id = connection.execute(
                insert(invocations).returning(invocations.c.id),
                {
                    "at": record.at or datetime.now(UTC),
                    "service_id": record.service_id,
                    "hook": record.hook,
                    "hook_instance": record.hook_instance,
                    "ruleset_version": record.ruleset_version,
                    "evaluation_ms": record.evaluation_ms,
                    "patient_id": self.policy.stored_patient_id(record.patient_id),
                    "patient_key": self.policy.patient_key(record.patient_id),
                    "user_id": record.user_id,
                    "tenant": record.tenant,
                },
            ).scalar_one()
            if record.decisions:
                connection.execute(
                    insert(decisions),
                    [
                        {
                            "invocation_id": invocation_id,
                            "rule_id": decision.rule_id,
                            "indicator": decision.indicator,
                            "mode": decision.mode,
                            "card_uuid": decision.card_uuid,
                            "suggestion_uuids": list(decision.suggestion_uuids),
                            "summary": decision.summary,
                            "evidence": list(decision.evidence),
                            "sources": list(decision.sources),
                        }
                        for decision in record.decisions
                    ],
                )

    def record_feedback(
        self,
        service_id: str,
        items: list[dict[str, Any]],
        *,
        user_id: str | None = None,
        tenant: str | None = None,
    ) -> int:
        """Store validated CDS Hooks Feedback items; a resent item is ignored. Returns how many
        were new. An override with a snooze reason silences that card's rule for its patient."""
        stored = 0
        with self._sessions() as session:
            for item in items:
                if self._store_feedback_item(session, service_id, item, user_id, tenant):
                    stored += 1
        return stored

    def _store_feedback_item(
        self,
        session: Session,
        service_id: str,
        item: Mapping[str, Any],
        user_id: str | None,
        tenant: str | None,
    ) -> bool:
        card = str(item["card"])
        outcome = str(item["outcome"])
        outcome_at = _instant(item["outcomeTimestamp"])
        suggestions = [str(s["id"]) for s in item.get("acceptedSuggestions") or ()]
        override = item.get("overrideReason") or {}
        reason = override.get("reason") or {}
        now = datetime.now(UTC)
        try:
            with session.begin():
                session.add(
                    Feedback(
                        dedup_key=_feedback_key(card, outcome, outcome_at, suggestions),
                        received_at=now,
                        service_id=service_id,
                        card_uuid=card,
                        outcome=outcome,
                        outcome_at=outcome_at,
                        accepted_suggestions=suggestions,
                        reason_system=reason.get("system"),
                        reason_code=reason.get("code"),
                        reason_display=reason.get("display"),
                        comment=override.get("userComment"),
                        user_id=user_id,
                        tenant=tenant,
                    )
                )
                period = self.policy.snooze_period(reason) if outcome == "overridden" else None
                origin = self._card_origin(session, card) if period else None
                if period and origin:
                    rule_id, patient_key = origin
                    session.add(
                        Snooze(
                            patient_key=patient_key,
                            rule_id=rule_id,
                            until=outcome_at + period,
                            card_uuid=card,
                            reason_code=str(reason["code"]),
                            created_at=now,
                        )
                    )
        except IntegrityError:
            # Another replica stored the same item between our check and insert: not new.
            return False
        return True

    @staticmethod
    def _card_origin(session: Session, card_uuid: str) -> tuple[str, str] | None:
        """The rule and patient key behind a returned card, from the audit trail."""
        row = session.execute(
            select(Decision.rule_id, Invocation.patient_key)
            .join(Invocation, Decision.invocation_id == Invocation.id)
            .where(Decision.card_uuid == card_uuid)
        ).first()
        if row is None or row.patient_key is None:
            return None
        return row.rule_id, row.patient_key

    def snoozed_rules(self, patient_key: str | None, now: datetime | None = None) -> set[str]:
        """Rule ids this patient's clinicians have snoozed and whose snooze has not run out."""
        if patient_key is None:
            return set()
        now = now or datetime.now(UTC)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(Snooze.rule_id).where(Snooze.patient_key == patient_key, Snooze.until > now)
            )
            return set(rows.scalars())

    def remember_jti(self, jti: str, expires_at: datetime) -> bool:
        """Record a JWT id; False when any replica has already seen it (a replay).

        The id is stored as a digest: ids may be long or hold characters (NUL) PostgreSQL refuses.
        """
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.execute(delete(SeenToken).where(SeenToken.expires_at <= now))
        try:
            with self._sessions.begin() as session:
                session.add(SeenToken(jti=hashlib.sha256(jti.encode()).hexdigest(), expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def first_use(self, key: str, expires_at: float) -> bool:
        """The security layer's ReplayCache protocol (epoch seconds), shared by all replicas."""
        return self.remember_jti(key, datetime.fromtimestamp(expires_at, UTC))

    def decision_activity(self, since: datetime | None = None) -> list[DecisionActivity]:
        query = select(Decision.rule_id, Decision.mode, Decision.card_uuid, Invocation.evaluation_ms).join(
            Invocation, Decision.invocation_id == Invocation.id
        )
        if since is not None:
            query = query.where(Invocation.at >= since)
        with self._sessions() as session:
            return [DecisionActivity(*row) for row in session.execute(query)]

    def feedback_activity(self, since: datetime | None = None) -> list[FeedbackActivity]:
        query = (
            select(
                Decision.rule_id,
                Feedback.card_uuid,
                Feedback.outcome,
                Feedback.outcome_at,
                Feedback.reason_code,
                Feedback.reason_display,
            )
            .join(Decision, Feedback.card_uuid == Decision.card_uuid)
            .join(Invocation, Decision.invocation_id == Invocation.id)
        )
        if since is not None:
            query = query.where(Invocation.at >= since)
        with self._sessions() as session:
            return [FeedbackActivity(*row) for row in session.execute(query)]
