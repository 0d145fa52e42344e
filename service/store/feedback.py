"""Feedback bound to the cards this service issued, and the snoozes some overrides ask for.

An item counts only for a card the audit trail shows was returned by this CDS service to this
client (issuer and tenant), with suggestions and override reasons that card offered. A snooze is
filed under the client and the patient, and runs from the moment the service received the
override: the client's ``outcomeTimestamp`` is recorded, never trusted to set an end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from service.store.policy import AuditPolicy
from service.store.schema import Decision, Feedback, Invocation, Snooze
from service.store.statements import compiled, fetch
from service.store.writes import insert_once

#: How far ahead of the server clock an outcomeTimestamp may be (clock skew between machines).
FUTURE_SKEW = timedelta(minutes=5)
#: One answer for a card that does not exist and a card issued to another client: no probing.
NOT_ISSUED = "no card with this uuid was issued to this client"


@dataclass(frozen=True)
class FeedbackClient:
    """Who posted the feedback and through which service's feedback URL."""

    service_id: str
    issuer: str | None = None
    tenant: str | None = None
    user_id: str | None = None

    def to_journal(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "issuer": self.issuer, "tenant": self.tenant,
                "user_id": self.user_id}


@dataclass(frozen=True)
class Refusal:
    """An item that was not stored: its place in the request, its card, and why."""

    item: str
    card: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"item": self.item, "card": self.card, "reason": self.reason}


@dataclass(frozen=True)
class FeedbackReceipt:
    """What became of one feedback request; ``journalled`` when the database was away."""

    received: int
    stored: int = 0
    refused: tuple[Refusal, ...] = field(default=())
    journalled: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"received": self.received, "stored": self.stored}
        if self.journalled:
            body["journalled"] = self.received
        if self.refused:
            body["notStored"] = [r.to_json() for r in self.refused]
        return body


@dataclass(frozen=True)
class _Card:
    rule_id: str
    service_id: str
    issuer: str | None
    tenant: str | None
    patient_key: str | None
    suggestion_uuids: tuple[str, ...]
    override_reasons: tuple[str, ...] | None


def reason_token(system: object, code: object) -> str:
    """How an override reason is recorded on a decision and compared with feedback."""
    return f"{system}|{code}"


def _instant(value: str) -> datetime:
    """A validated ISO 8601 instant as aware UTC; OverflowError for one beyond the calendar."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _feedback_key(card: str, outcome: str, at: datetime, suggestions: Sequence[str]) -> str:
    identity = [card, outcome, at.isoformat(), sorted(suggestions)]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def _issued_cards(connection: Connection, uuids: set[str]) -> dict[str, _Card]:
    rows = connection.execute(
        select(
            Decision.card_uuid,
            Decision.rule_id,
            Decision.suggestion_uuids,
            Decision.override_reasons,
            Invocation.service_id,
            Invocation.issuer,
            Invocation.tenant,
            Invocation.patient_key,
        )
        .join(Invocation, Decision.invocation_id == Invocation.id)
        .where(Decision.card_uuid.in_(uuids), Decision.mode == "active")
    )
    return {
        row.card_uuid: _Card(
            rule_id=row.rule_id,
            service_id=row.service_id,
            issuer=row.issuer,
            tenant=row.tenant,
            patient_key=row.patient_key,
            suggestion_uuids=tuple(row.suggestion_uuids or ()),
            override_reasons=None if row.override_reasons is None else tuple(row.override_reasons),
        )
        for row in rows
    }


def _refusal(
    item: Mapping[str, Any], card: _Card | None, client: FeedbackClient, now: datetime
) -> str | None:
    """Why ``item`` may not be stored for ``card``, or None when it may."""
    if card is None or (card.issuer, card.tenant) != (client.issuer, client.tenant):
        return NOT_ISSUED
    if card.service_id != client.service_id:
        return f"this card was issued by the service `{card.service_id}`; send its feedback there"
    try:
        outcome_at = _instant(item["outcomeTimestamp"])
    except OverflowError:
        return "outcomeTimestamp is outside the range of dates this service records"
    if outcome_at > now + FUTURE_SKEW:
        return "outcomeTimestamp is in the future"
    for suggestion in item.get("acceptedSuggestions") or ():
        if suggestion["id"] not in card.suggestion_uuids:
            return f"suggestion `{suggestion['id']}` was not offered on this card"
    reason = (item.get("overrideReason") or {}).get("reason")
    offered = card.override_reasons
    if reason and offered is not None and reason_token(reason["system"], reason["code"]) not in offered:
        return "this override reason was not offered on this card"
    return None


def write_feedback(
    connection: Connection,
    client: FeedbackClient,
    items: Sequence[Mapping[str, Any]],
    policy: AuditPolicy,
    received_at: datetime,
) -> FeedbackReceipt:
    """Store every acceptable item of one request in the caller's transaction.

    A resent item (same card, outcome, instant and suggestions) is not stored twice, also when a
    replay of the journal repeats a whole request.
    """
    cards = _issued_cards(connection, {str(item["card"]) for item in items})
    feedback, snoozes = Feedback.__table__, Snooze.__table__
    stored = 0
    refused: list[Refusal] = []
    for index, item in enumerate(items):
        card_uuid = str(item["card"])
        card = cards.get(card_uuid)
        why = _refusal(item, card, client, received_at)
        if why is not None or card is None:
            refused.append(Refusal(f"feedback[{index}]", card_uuid, why or NOT_ISSUED))
            continue
        outcome = str(item["outcome"])
        outcome_at = _instant(item["outcomeTimestamp"])
        suggestions = [str(s["id"]) for s in item.get("acceptedSuggestions") or ()]
        override = item.get("overrideReason") or {}
        reason = override.get("reason") or {}
        new = connection.execute(
            insert_once(connection, feedback, "dedup_key", "id"),
            {
                "dedup_key": _feedback_key(card_uuid, outcome, outcome_at, suggestions),
                "received_at": received_at,
                "service_id": client.service_id,
                "card_uuid": card_uuid,
                "outcome": outcome,
                "outcome_at": outcome_at,
                "accepted_suggestions": suggestions,
                "reason_system": reason.get("system"),
                "reason_code": reason.get("code"),
                "reason_display": reason.get("display"),
                "comment": override.get("userComment"),
                "user_id": client.user_id,
                "issuer": client.issuer,
                "tenant": client.tenant,
            },
        ).first()
        if new is None:
            refused.append(Refusal(f"feedback[{index}]", card_uuid, "already received"))
            continue
        stored += 1
        period = policy.snooze_period(reason) if outcome == "overridden" else None
        if period and card.patient_key:
            connection.execute(
                snoozes.insert(),
                {
                    "issuer": client.issuer or "",
                    "tenant": client.tenant or "",
                    "patient_key": card.patient_key,
                    "rule_id": card.rule_id,
                    "until": received_at + period,
                    "card_uuid": card_uuid,
                    "reason_code": str(reason["code"]),
                    "created_at": received_at,
                },
            )
    return FeedbackReceipt(received=len(items), stored=stored, refused=tuple(refused))


# Built once: the look-up runs on every hook call, and building the statement cost more than running it.
_SNOOZED = select(Snooze.rule_id).where(
    Snooze.patient_key == bindparam("patient_key"),
    Snooze.issuer == bindparam("issuer"),
    Snooze.tenant == bindparam("tenant"),
    Snooze.until > bindparam("now"),
)


def snoozed_rules(
    connection: Connection, patient_key: str, issuer: str | None, tenant: str | None, now: datetime
) -> set[str]:
    """Rule ids this client's clinicians snoozed for this patient, still running at ``now``."""
    rows = fetch(connection, compiled(_SNOOZED, connection.dialect),
                 {"patient_key": patient_key, "issuer": issuer or "", "tenant": tenant or "", "now": now})
    return {rule_id for (rule_id,) in rows}
