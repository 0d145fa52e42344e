"""What ``spinehip report`` reads: audited decisions and the feedback on their cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from service.store.schema import Decision, Feedback, Invocation


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


def decision_activity(engine: Engine, since: datetime | None = None) -> list[DecisionActivity]:
    query = select(Decision.rule_id, Decision.mode, Decision.card_uuid, Invocation.evaluation_ms).join(
        Invocation, Decision.invocation_id == Invocation.id
    )
    if since is not None:
        query = query.where(Invocation.at >= since)
    with engine.connect() as connection:
        return [DecisionActivity(*row) for row in connection.execute(query)]


def feedback_activity(engine: Engine, since: datetime | None = None) -> list[FeedbackActivity]:
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
    with engine.connect() as connection:
        return [FeedbackActivity(*row) for row in connection.execute(query)]
