"""From a hook answer to an audit record, and the snooze filter applied before answering.

Works on the CDS Hooks response body (what the EHR really received) plus the engine's decisions
(for evidence, citations and shadow decisions). Cards are matched to rules by ``source.topic.code``,
which the design fixes to the rule id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from service.store.records import DecisionRecord, InvocationRecord


class _Rule(Protocol):
    indicator: str


class _Evidence(Protocol):
    ref: str


class _Source(Protocol):
    title: str


class EngineDecision(Protocol):
    rule_id: str
    mode: str
    rule: _Rule
    summary: str
    evidence: tuple[_Evidence, ...]
    sources: tuple[_Source, ...]


class EngineEvaluation(Protocol):
    decisions: tuple[EngineDecision, ...]
    ruleset_version: str


def card_topic(card: Mapping[str, Any]) -> str | None:
    topic = (card.get("source") or {}).get("topic") or {}
    return topic.get("code")


def drop_snoozed_cards(body: Mapping[str, Any], snoozed: Iterable[str]) -> dict[str, Any]:
    """The response without cards of rules this patient's clinicians snoozed."""
    silenced = set(snoozed)
    cards = [c for c in body.get("cards", []) if card_topic(c) not in silenced]
    return {**body, "cards": cards}


def _attributes(decision: EngineDecision | None) -> dict[str, Any]:
    if decision is None:
        return {}
    return {
        "evidence": tuple(e.ref for e in decision.evidence),
        "sources": tuple(s.title for s in decision.sources),
    }


def audit_record(
    *,
    service_id: str,
    hook: str,
    hook_instance: str,
    patient_id: str | None,
    body: Mapping[str, Any],
    evaluation: EngineEvaluation,
    evaluation_ms: float,
    user_id: str | None = None,
    tenant: str | None = None,
    at: datetime | None = None,
) -> InvocationRecord:
    """Every card returned in ``body`` and every shadow decision, with source attributes."""
    by_rule = {d.rule_id: d for d in evaluation.decisions if d.mode == "active"}
    returned = [
        DecisionRecord(
            rule_id=card_topic(card) or "(no topic)",
            indicator=str(card.get("indicator", "")),
            mode="active",
            card_uuid=card.get("uuid"),
            suggestion_uuids=tuple(
                s["uuid"] for s in card.get("suggestions") or () if s.get("uuid")
            ),
            summary=str(card.get("summary", "")),
            **_attributes(by_rule.get(card_topic(card) or "")),
        )
        for card in body.get("cards", [])
    ]
    shadow = [
        DecisionRecord(
            rule_id=d.rule_id,
            indicator=d.rule.indicator,
            mode="shadow",
            summary=d.summary,
            **_attributes(d),
        )
        for d in evaluation.decisions
        if d.mode == "shadow"
    ]
    return InvocationRecord(
        service_id=service_id,
        hook=hook,
        hook_instance=hook_instance,
        ruleset_version=evaluation.ruleset_version,
        evaluation_ms=evaluation_ms,
        patient_id=patient_id,
        user_id=user_id,
        tenant=tenant,
        decisions=(*returned, *shadow),
        at=at,
    )


def settle_answer(
    store: Any,
    *,
    service_id: str,
    hook: str,
    hook_instance: str,
    patient_id: str,
    body: Mapping[str, Any],
    evaluation: EngineEvaluation,
    evaluation_ms: float,
    unsnoozable: Iterable[str],
    user_id: str | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """What the EHR receives: snoozed routine cards dropped, then everything audited."""
    snoozed = store.snoozed_rules(store.patient_key(patient_id)) - set(unsnoozable)
    settled = drop_snoozed_cards(body, snoozed)
    store.record_invocation(
        audit_record(
            service_id=service_id,
            hook=hook,
            hook_instance=hook_instance,
            patient_id=patient_id,
            body=settled,
            evaluation=evaluation,
            evaluation_ms=evaluation_ms,
            user_id=user_id,
            tenant=tenant,
        )
    )
    return settled
