"""Writing the audit trail: one call and all its decisions in one transaction, at most once."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from service.store.policy import AuditPolicy
from service.store.records import DecisionRecord, InvocationRecord
from service.store.schema import Decision, Invocation
from service.store.statements import compiled, execute_many, fetch
from service.store.writes import insert_once

# Inline: the decisions' own ids are not needed back, so no RETURNING is asked for.
_DECISIONS = Decision.__table__.insert().inline()


def write_invocation(connection: Connection, record: InvocationRecord, key: str, policy: AuditPolicy) -> bool:
    """Insert the call under ``key`` and its decisions; False when ``key`` was already written.

    Runs on every hook call, so it is two statements on the driver (``store.statements``).
    """
    return _insert(connection, record, key, policy.stored_patient_id(record.patient_id),
                   policy.patient_key(record.patient_id))


def _insert(
    connection: Connection,
    record: InvocationRecord,
    key: str,
    patient_id: str | None,
    patient_key: str | None,
) -> bool:
    if record.at is None:
        raise ValueError("the store stamps a record's time before writing it")
    dialect = connection.dialect
    call = {
        "audit_key": key,
        "at": record.at,
        "service_id": record.service_id,
        "hook": record.hook,
        "hook_instance": record.hook_instance,
        "ruleset_version": record.ruleset_version,
        "evaluation_ms": record.evaluation_ms,
        "patient_id": patient_id,
        "patient_key": patient_key,
        "user_id": record.user_id,
        "issuer": record.issuer,
        "tenant": record.tenant,
    }
    inserted = fetch(connection, compiled(
        insert_once(connection, Invocation.__table__, "audit_key", "id"), dialect, tuple(call)), call)
    if not inserted:
        return False
    [(invocation_id,)] = inserted
    rows = [
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
            "override_reasons": list(decision.override_reasons),
        }
        for decision in record.decisions
    ]
    if rows:
        execute_many(connection, compiled(_DECISIONS, dialect, tuple(rows[0])), rows)
    return True


def to_journal(record: InvocationRecord, policy: AuditPolicy) -> dict[str, Any]:
    """The record as JSON-safe data for the journal, the patient already kept, hashed or dropped
    per the audit policy: the local disk holds no more of the patient than the database would."""
    data = asdict(record)
    data["at"] = record.at.isoformat() if record.at else None
    data["patient_id"] = policy.stored_patient_id(record.patient_id)
    data["patient_key"] = policy.patient_key(record.patient_id)
    return data


def write_journalled(connection: Connection, data: dict[str, Any], key: str) -> bool:
    """:func:`write_invocation` for a record :func:`to_journal` wrote."""
    return _insert(connection, _from_journal(data), key, data.get("patient_id"), data.get("patient_key"))


def _from_journal(data: dict[str, Any]) -> InvocationRecord:
    """The record :func:`to_journal` wrote, with tuples and the timestamp restored."""
    decision_fields = {f.name for f in fields(DecisionRecord)}
    decisions = tuple(
        DecisionRecord(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in decision_fields
        })
        for d in data.get("decisions") or ()
    )
    known = {f.name for f in fields(InvocationRecord)} - {"decisions", "at"}
    return InvocationRecord(
        **{k: v for k, v in data.items() if k in known},
        decisions=decisions,
        at=datetime.fromisoformat(data["at"]) if data.get("at") else None,
    )
