"""Condition trees (``when:``): parsed once at load into small immutable nodes.

Grammar, each node one of::

    name                                   a finding or a named condition holds
    {all: [node, ...]}  {any: [...]}  {not: node}
    {score: NAME, ge|gt|le|lt|eq: number}
    {duration: NAME, ge|gt|le|lt: 42d}     {duration: NAME, unknown: true}
    {relief: NAME, gt|...: number}         {relief: NAME, unknown: true}
    {count: FINDING, ge|...: number}
    {hook: [order-select, order-sign]}
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.engine.model import HOOKS, parse_duration
from service.yamlsource import ConfigError, Loc, YamlDocument, did_you_mean

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le, "eq": operator.eq,
}
COMPARE_KINDS = ("score", "duration", "relief", "count")


@dataclass(frozen=True)
class Ref:
    name: str
    kind: str  # "finding" | "condition"


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Compare:
    kind: str  # score | duration | relief | count
    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class Unknown:
    kind: str  # duration | relief
    name: str


@dataclass(frozen=True)
class HookIs:
    hooks: frozenset[str]


Node = Ref | AllOf | AnyOf | Not | Compare | Unknown | HookIs


@dataclass
class Names:
    """What a condition may refer to, by kind, for reference checks and hints."""

    findings: Mapping[str, Any]
    conditions: Mapping[str, Any]
    scores: Mapping[str, Any]
    durations: Mapping[str, Any]
    reliefs: Mapping[str, Any]

    def by_kind(self, kind: str) -> Mapping[str, Any]:
        return {"score": self.scores, "duration": self.durations, "relief": self.reliefs,
                "count": self.findings}[kind]


def parse_condition(
    raw: Any, loc: Loc, doc: YamlDocument, names: Names, errors: list[ConfigError]
) -> Node | None:
    """The node for ``raw``, or None after appending located errors."""
    if isinstance(raw, str):
        if raw in names.findings:
            return Ref(raw, "finding")
        if raw in names.conditions:
            return Ref(raw, "condition")
        hint = did_you_mean(raw, [*names.findings, *names.conditions])
        errors.append(doc.error(loc, f"unknown finding or condition `{raw}`", hint))
        return None
    if not isinstance(raw, dict) or not raw:
        errors.append(doc.error(loc, "a condition is a name or a mapping such as {all: [...]}"))
        return None
    keys = set(raw)
    if keys in ({"all"}, {"any"}):
        key = next(iter(keys))
        items = raw[key]
        if not isinstance(items, list) or not items:
            errors.append(doc.error((*loc, key), f"`{key}` takes a non-empty list"))
            return None
        children = [parse_condition(c, (*loc, key, i), doc, names, errors)
                    for i, c in enumerate(items)]
        if any(c is None for c in children):
            return None
        return (AllOf if key == "all" else AnyOf)(tuple(children))  # type: ignore[arg-type]
    if keys == {"not"}:
        child = parse_condition(raw["not"], (*loc, "not"), doc, names, errors)
        return None if child is None else Not(child)
    if keys == {"hook"}:
        hooks = raw["hook"] if isinstance(raw["hook"], list) else [raw["hook"]]
        bad = [h for h in hooks if h not in HOOKS]
        if bad or not hooks:
            errors.append(doc.error((*loc, "hook"), f"unknown hook {bad}; known: {list(HOOKS)}"))
            return None
        return HookIs(frozenset(hooks))
    kinds = keys & set(COMPARE_KINDS)
    if len(kinds) != 1:
        known = ["all", "any", "not", "hook", *COMPARE_KINDS]
        unknown = sorted(keys - set(OPERATORS) - {"unknown"})
        hint = did_you_mean(unknown[0], known) if unknown else ""
        errors.append(doc.error(loc, f"cannot read condition with keys {sorted(keys)}; expected "
                                     "one of all/any/not/hook/score/duration/relief/count", hint))
        return None
    kind = kinds.pop()
    name = raw[kind]
    known_names = names.by_kind(kind)
    if name not in known_names:
        errors.append(doc.error((*loc, kind), f"unknown {kind} `{name}`",
                                did_you_mean(str(name), known_names)))
        return None
    rest = keys - {kind}
    if rest == {"unknown"} and kind in ("duration", "relief"):
        if raw["unknown"] is not True:
            errors.append(doc.error((*loc, "unknown"), "`unknown` can only be `true`"))
            return None
        return Unknown(kind, name)
    if len(rest) != 1 or not rest <= set(OPERATORS):
        hint = did_you_mean(sorted(rest)[0], OPERATORS) if rest else ""
        errors.append(doc.error(loc, f"`{kind}` needs exactly one of gt, ge, lt, le, eq", hint))
        return None
    op = rest.pop()
    value = raw[op]
    try:
        value = parse_duration(value) if kind == "duration" else float(value)
    except (TypeError, ValueError) as exc:
        errors.append(doc.error((*loc, op), f"bad threshold {value!r}: {exc}"))
        return None
    return Compare(kind, name, op, value)


def named_references(node: Node) -> set[str]:
    """Names of the named conditions ``node`` uses directly or below (for cycle checks)."""
    if isinstance(node, Ref):
        return {node.name} if node.kind == "condition" else set()
    if isinstance(node, AllOf | AnyOf):
        return set().union(*(named_references(c) for c in node.children))
    if isinstance(node, Not):
        return named_references(node.child)
    return set()
