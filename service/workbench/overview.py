"""What the workbench shows about the serving rule set: its rules and how they fare in the audit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from service.engine import RuleSet
from service.report import summarise
from service.store import Store
from service.store.schema import Invocation


@dataclass(frozen=True)
class RuleRow:
    id: str
    title: str
    status: str
    hooks: str
    precedence: int
    indicator: str
    limits: tuple[str, ...]
    sources: tuple[str, ...]
    file: str
    line: int


def rule_rows(ruleset: RuleSet) -> list[RuleRow]:
    rows = []
    for rule in ruleset.rules:
        spec = rule.spec
        status = ", ".join([spec.status, spec.mode if spec.enabled else "disabled",
                            *(["red flag"] if spec.red_flag else [])])
        titles = tuple(ruleset.sources[c].title if c in ruleset.sources else c for c in spec.cite)
        rows.append(RuleRow(spec.id, spec.title, status,
                            ", ".join(spec.hooks) if spec.hooks else "all", spec.precedence,
                            spec.indicator, tuple(spec.limits), titles, rule.file, rule.line))
    return rows


@dataclass(frozen=True)
class RuleRates:
    rule: str
    fired: int
    fired_share: float | None  # of all audited hook calls
    answered: int
    overridden: int
    override_share: float | None  # of the cards clinicians answered


def audit_rates(store: Store) -> tuple[int, list[RuleRates]]:
    """(audited hook calls, per-rule firing and override rates), busiest rules first."""
    if not store.has_schema():
        return 0, []
    with store.engine.connect() as connection:
        calls = connection.execute(select(func.count()).select_from(Invocation)).scalar_one()
    out = []
    for s in summarise(store.decision_activity(), store.feedback_activity()):
        answered = s.accepted + s.overridden
        out.append(RuleRates(s.rule_id, s.fired, s.fired / calls if calls else None, answered,
                             s.overridden, s.overridden / answered if answered else None))
    return calls, out
