"""Why a rule did not fire: the clause of its condition that failed, with the values seen.

Evaluated by the same evaluator as the request, on the same facts, so the explanation cannot
disagree with the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from service.engine.compiled import RuleSet
from service.engine.conditions import AllOf, AnyOf, Compare, HookIs, Node, Not, Ref, Unknown
from service.engine.evaluate import Evaluator, call_facts

SYMBOLS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "eq": "="}


def failed_clauses(ruleset: RuleSet, resources: Iterable[Mapping[str, Any]], *, now: datetime,
                   hook: str, draft_orders: Sequence[Mapping[str, Any]] = (),
                   selections: Sequence[str] = (), patient_id: str | None = None,
                   ) -> dict[str, str]:
    """Rule id -> the failed clause, for every rule whose condition is false on this data."""
    facts = call_facts(ruleset, resources, now=now, hook=hook, draft_orders=draft_orders,
                       selections=selections, patient_id=patient_id)
    ev = Evaluator(ruleset, facts, now, hook)
    return {rule.id: _why(ev, rule.when) for rule in ruleset.rules if not ev.truth(rule.when)[0]}


def _value(value: Any) -> str:
    if isinstance(value, timedelta):
        return f"{value.days} days"
    return f"{value:g}" if isinstance(value, float) else str(value)


def label(node: Node) -> str:
    """The clause as a person would write it."""
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, AllOf | AnyOf):
        word = "all" if isinstance(node, AllOf) else "any"
        return f"{word}({', '.join(label(c) for c in node.children)})"
    if isinstance(node, Not):
        return f"not {label(node.child)}"
    if isinstance(node, HookIs):
        return f"hook in {sorted(node.hooks)}"
    if isinstance(node, Unknown):
        return f"{node.kind} {node.name} unknown"
    named = f" ({node.parameter})" if node.parameter else ""
    return f"{node.kind} {node.name} {SYMBOLS[node.op]} {_value(node.value)}{named}"


def _actual(ev: Evaluator, node: Compare) -> Any:
    if node.kind == "score":
        return ev.score(node.name)[0]
    if node.kind == "duration":
        return ev.duration(node.name)[0]
    if node.kind == "relief":
        relief = ev.relief(node.name)
        return None if relief is None else round(relief.percent, 1)
    return len(ev.matches(node.name))


def _why(ev: Evaluator, node: Node) -> str:
    """The failing part of a false ``node``, as deep as it goes."""
    if isinstance(node, Ref):
        if node.kind == "condition":
            return f"{node.name}: {_why(ev, ev.rs.conditions[node.name])}"
        return f"no {node.name}"
    if isinstance(node, AllOf):
        failed = next(c for c in node.children if not ev.truth(c)[0])
        return _why(ev, failed)
    if isinstance(node, AnyOf):
        return "none of: " + "; ".join(_why(ev, c) for c in node.children)
    if isinstance(node, Not):
        return f"{label(node)}: {label(node.child)} holds"
    if isinstance(node, HookIs):
        return f"{label(node)}: the hook is {ev.hook}"
    if isinstance(node, Unknown):
        return f"{label(node)}: it is known"
    actual = _actual(ev, node)
    seen = "unknown" if actual is None else _value(actual)
    return f"{label(node)}: {node.name} is {seen}"
