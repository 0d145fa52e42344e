"""From an answered hook call to its audit record: the cards returned and the shadow decisions.

Reads the decisions the cards were rendered from, so a card is never traced back to its rule
through its JSON. Snoozed rules are not here: the engine left them out before rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.cards import RenderedCard
from service.engine import Decision, Evaluation
from service.store.feedback import reason_token
from service.store.records import DecisionRecord, InvocationRecord


def _attributes(decision: Decision) -> dict[str, tuple[str, ...]]:
    return {
        "evidence": tuple(e.ref for e in decision.evidence),
        "sources": tuple(s.title for s in decision.sources),
    }


def _returned(rendered: RenderedCard) -> DecisionRecord:
    card, decision = rendered.card, rendered.decision
    return DecisionRecord(
        rule_id=decision.rule_id,
        indicator=decision.rule.indicator,
        mode="active",
        card_uuid=card["uuid"],
        suggestion_uuids=tuple(s["uuid"] for s in card.get("suggestions", ())),
        summary=card["summary"],
        override_reasons=tuple(
            reason_token(r.get("system"), r.get("code")) for r in card.get("overrideReasons", ())
        ),
        **_attributes(decision),
    )


def _shadow(decision: Decision) -> DecisionRecord:
    return DecisionRecord(
        rule_id=decision.rule_id,
        indicator=decision.rule.indicator,
        mode="shadow",
        summary=decision.summary,
        **_attributes(decision),
    )


def audit_record(
    *,
    service_id: str,
    hook: str,
    hook_instance: str,
    patient_id: str | None,
    evaluation: Evaluation,
    cards: Sequence[RenderedCard],
    evaluation_ms: float,
    user_id: str | None = None,
    issuer: str | None = None,
    tenant: str | None = None,
    at: datetime | None = None,
) -> InvocationRecord:
    """Every card returned and every shadow decision, with their evidence and citations."""
    return InvocationRecord(
        service_id=service_id,
        hook=hook,
        hook_instance=hook_instance,
        ruleset_version=evaluation.ruleset_version,
        evaluation_ms=evaluation_ms,
        patient_id=patient_id,
        user_id=user_id,
        issuer=issuer,
        tenant=tenant,
        decisions=(*map(_returned, cards), *map(_shadow, evaluation.shadow)),
        at=at,
    )
