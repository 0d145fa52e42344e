"""The store the web layer talks to: audit, feedback, snoozes and spent JWT ids, kept answering
when the database is slow or gone.

Each hook-path operation waits at most the configured bound. When the bound is hit, an audit
record or a feedback request goes to the local journal (replayed later, at most once per record)
and the call is answered; a snooze look-up raises for the caller to fail open; a JWT id is kept
in a per-process cache for the token's lifetime, or refused when so configured.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from service.config import Settings
from service.security.replay import InMemoryReplayCache
from service.store import database, queries
from service.store.bounded import TRANSIENT_FAULTS, Bounded, DatabaseUnavailable, describe
from service.store.feedback import FeedbackClient, FeedbackReceipt, snoozed_rules, write_feedback
from service.store.held import HookConnections
from service.store.invocations import to_journal, write_invocation, write_journalled
from service.store.journal import Entry, Journal
from service.store.policy import AuditPolicy
from service.store.records import InvocationRecord
from service.store.replayer import Replayer
from service.store.tokens import remember_jti

log = logging.getLogger(__name__)

INVOCATION, FEEDBACK = "invocation", "feedback"
#: Spent token ids a process keeps while the database is away; more than this and tokens are refused.
FALLBACK_JTI_CAPACITY = 100_000


@dataclass(frozen=True)
class Faults:
    """What the store does when the database does not answer within ``bound_s``."""

    bound_s: float = Settings.db_timeout_s
    journal_dir: Path = Settings.journal_dir
    journal_max_bytes: int = Settings.journal_max_bytes
    jti_fallback: str = Settings.jti_fallback
    replay_interval_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Faults:
        return cls(
            bound_s=settings.db_timeout_s,
            journal_dir=settings.journal_dir,
            journal_max_bytes=settings.journal_max_bytes,
            jti_fallback=settings.jti_fallback,
        )


@dataclass(frozen=True)
class Health:
    """The store's part of readiness: ``degraded`` names why, while calls are still answered."""

    database: str
    journal_depth: int
    journal_writable: bool

    @property
    def degraded(self) -> str | None:
        if not self.serving:
            return f"database {self.database} and the local journal cannot take records"
        if self.database != "ok":
            return f"database {self.database}: audit and feedback go to the local journal"
        if self.journal_depth:
            return "replaying the local journal into the database"
        return None

    @property
    def serving(self) -> bool:
        """False only when neither the database nor the journal can take an audit record."""
        return self.database == "ok" or self.journal_writable


def journal_directory(base: Path, engine: Engine) -> Path:
    """One journal per database under ``base``: records are only ever replayed where they belong."""
    url = engine.url.render_as_string(hide_password=True)
    return base / hashlib.sha256(url.encode()).hexdigest()[:16]


class Store:
    """Feedback, audit trail, snoozes and seen JWT ids in one SQL database, plus the journal."""

    def __init__(
        self, engine: Engine, policy: AuditPolicy | None = None, faults: Faults | None = None
    ) -> None:
        self.engine = engine
        self.policy = policy or AuditPolicy()
        self.faults = faults or Faults()
        directory = journal_directory(self.faults.journal_dir, engine)
        self.journal = Journal(directory, self.faults.journal_max_bytes)
        # SQLite is a local file: its waits are cut in the calling thread (see store.bounded), and
        # each thread keeps the connection its hook calls use (store.held).
        local_file = engine.dialect.name == "sqlite"
        self._bounded = Bounded(self.faults.bound_s, inline=local_file)
        self._hook = HookConnections(engine, hold=local_file)
        self._spent = InMemoryReplayCache(capacity=FALLBACK_JTI_CAPACITY)
        self.replayer = Replayer(self.journal, self.replay_entries, self.ping, self.faults.replay_interval_s)

    @classmethod
    def from_url(cls, url: str, policy: AuditPolicy | None = None, faults: Faults | None = None) -> Store:
        faults = faults or Faults()
        return cls(database.engine_for(url, faults.bound_s), policy, faults)

    @classmethod
    def from_settings(cls, settings: Settings, *, bounded: bool = True) -> Store:
        """The service's store; ``bounded=False`` for commands that may wait (reports)."""
        faults = Faults.from_settings(settings)
        engine = database.engine_for(settings.database_url, faults.bound_s if bounded else None)
        return cls(engine, AuditPolicy.from_settings(settings), faults)

    def close(self) -> None:
        self.replayer.stop()
        self._bounded.shutdown()
        self._hook.close()
        self.engine.dispose()

    def migrate(self) -> None:
        database.migrate(self.engine)

    def ping(self) -> None:
        database.ping(self.engine)

    def has_schema(self) -> bool:
        return database.has_schema(self.engine)

    def patient_key(self, patient_id: str | None) -> str | None:
        return self.policy.patient_key(patient_id)

    # -- the hook path --------------------------------------------------------------------------

    def record_invocation(self, record: InvocationRecord) -> bool:
        """Audit one call and every decision in it; False when it went to the journal instead.

        Raises JournalUnavailable when neither the database nor the journal can take it.
        """
        self.replayer.ensure_running()
        record = record if record.at else replace(record, at=datetime.now(UTC))
        key = uuid.uuid4().hex

        def write() -> bool:
            with self._hook.connection() as connection, connection.begin():
                return write_invocation(connection, record, key, self.policy)

        try:
            self._bounded.run("audit write", write)
            return True
        except DatabaseUnavailable as exc:
            # If the write lands after all, the replay finds its key and skips it.
            self.journal.append(INVOCATION, key, to_journal(record, self.policy))
            log.warning("%s; audit record journalled", exc)
            return False

    def snoozed_rules(
        self, patient_key: str | None, now: datetime | None = None, *,
        issuer: str | None = None, tenant: str | None = None,
    ) -> set[str]:
        """Rule ids this client's clinicians snoozed for this patient; DatabaseUnavailable when
        the look-up cannot complete in time (the caller shows the cards)."""
        if patient_key is None:
            return set()
        moment = now or datetime.now(UTC)

        def look_up() -> set[str]:
            with self._hook.connection() as connection:
                return snoozed_rules(connection, patient_key, issuer, tenant, moment)

        return self._bounded.run("snooze look-up", look_up)

    def record_feedback(
        self,
        service_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        issuer: str | None = None,
        tenant: str | None = None,
    ) -> FeedbackReceipt:
        """Store one feedback request in one transaction, or journal it whole for later."""
        self.replayer.ensure_running()
        client = FeedbackClient(service_id, issuer, tenant, user_id)
        received_at = datetime.now(UTC)

        def write() -> FeedbackReceipt:
            with self.engine.begin() as connection:
                return write_feedback(connection, client, items, self.policy, received_at)

        try:
            return self._bounded.run("feedback write", write)
        except DatabaseUnavailable as exc:
            data = {
                "client": client.to_journal(),
                "items": list(items),
                "received_at": received_at.isoformat(),
            }
            self.journal.append(FEEDBACK, uuid.uuid4().hex, data)
            log.warning("%s; feedback journalled", exc)
            return FeedbackReceipt(received=len(items), journalled=True)

    def remember_jti(self, jti: str, expires_at: datetime) -> bool:
        """Record a JWT id in the shared database; False for a replay."""
        return remember_jti(self.engine, jti, expires_at)

    def first_use(self, key: str, expires_at: float) -> bool:
        """The security layer's ReplayCache protocol (epoch seconds), shared by all replicas.

        With the database away, this process's own cache of spent ids stands in (a replay to
        another replica during the outage is then not seen), or the token is refused.
        """
        self.replayer.ensure_running()
        try:
            return self._bounded.run(
                "JWT replay check", lambda: self.remember_jti(key, datetime.fromtimestamp(expires_at, UTC))
            )
        except DatabaseUnavailable as exc:
            if self.faults.jti_fallback == "refuse":
                raise
            log.warning("%s; JWT ids checked against this process's cache only", exc)
            return self._spent.first_use(key, expires_at)

    # -- after the outage -----------------------------------------------------------------------

    def replay_entries(self, entries: list[Entry]) -> int:
        """Write journalled records into the database; returns how many went in (or were there).

        Calls go in before feedback, so feedback on a card issued during the outage finds it. One
        transaction for the lot; should the database refuse one record for good (not a timeout or
        a lost connection), each is tried on its own and the refused ones are set aside for an
        operator instead of blocking the journal forever.
        """
        ordered = sorted(entries, key=lambda e: e.kind != INVOCATION)
        try:
            with self.engine.begin() as connection:
                for entry in ordered:
                    self._replay(connection, entry)
            return len(ordered)
        except TRANSIENT_FAULTS:
            raise
        except DBAPIError:
            log.warning("journal replay: a record was refused; replaying one by one")
        written, refused = 0, []
        for entry in ordered:
            try:
                with self.engine.begin() as connection:
                    self._replay(connection, entry)
                written += 1
            except TRANSIENT_FAULTS:
                raise
            except DBAPIError as exc:
                log.error("journal record %s refused by the database (%s); set aside",
                          entry.key, describe(exc))
                refused.append(entry)
        self.journal.set_aside(refused)
        return written

    def _replay(self, connection: Any, entry: Entry) -> None:
        if entry.kind == INVOCATION:
            write_journalled(connection, entry.data, entry.key)
        elif entry.kind == FEEDBACK:
            self._replay_feedback(connection, entry.data)
        else:
            log.warning("journal entry of unknown kind %r skipped", entry.kind)

    def _replay_feedback(self, connection: Any, data: dict[str, Any]) -> None:
        client = FeedbackClient(**data["client"])
        receipt = write_feedback(
            connection, client, data["items"], self.policy, datetime.fromisoformat(data["received_at"])
        )
        for refusal in receipt.refused:
            log.info("journalled feedback %s not stored: %s", refusal.item, refusal.reason)

    def replay(self) -> int:
        """Drain the journal now; returns how many records were written or found written."""
        return self.journal.drain(self.replay_entries)

    def health(self) -> Health:
        try:
            self._bounded.run("readiness ping", self.ping, probe=True)
            state = "ok"
        except DatabaseUnavailable as exc:
            state = f"unreachable ({exc.reason})"
        return Health(state, self.journal.depth(), self.journal.writable())

    # -- the report -----------------------------------------------------------------------------

    def decision_activity(self, since: datetime | None = None) -> list[queries.DecisionActivity]:
        return queries.decision_activity(self.engine, since)

    def feedback_activity(self, since: datetime | None = None) -> list[queries.FeedbackActivity]:
        return queries.feedback_activity(self.engine, since)
