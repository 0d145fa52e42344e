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

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.engine.hooks import HOOKS
from service.engine.model import positive_duration
from service.engine.parameters import Parameter, Use, resolve
from service.yamlsource import ConfigError, Loc, YamlDocument, did_you_mean

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le, "eq": operator.eq,
}
COMPARE_KINDS = ("score", "duration", "relief", "count")
# Deepest nesting of all / any / not in one condition. Parsing and evaluating recurse once per
# level, so a hostile file must not reach Python's recursion limit; no clinical rule needs more.
MAX_CONDITION_DEPTH = 32


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
    parameter: str | None = None  # the named parameter the threshold comes from


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
    """What a condition may refer to, by kind, for reference checks and hints.

    ``complete`` is False when some rule file could not be parsed: a name not found may be
    defined there, so it is not reported as unknown.
    """

    findings: Mapping[str, Any]
    conditions: Mapping[str, Any]
    scores: Mapping[str, Any]
    durations: Mapping[str, Any]
    reliefs: Mapping[str, Any]
    complete: bool = True
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    uses: list[Use] = field(default_factory=list)  # every parameter use, for the meaning check

    def by_kind(self, kind: str) -> Mapping[str, Any]:
        return {"score": self.scores, "duration": self.durations, "relief": self.reliefs,
                "count": self.findings}[kind]


@dataclass(frozen=True)
class _Parse:
    """One condition being parsed: where it is written and where its errors go."""

    doc: YamlDocument
    names: Names
    errors: list[ConfigError]

    def fail(self, loc: Loc, message: str, hint: str = "") -> None:
        self.errors.append(self.doc.error(loc, message, hint))

    def unknown(self, loc: Loc, message: str, hint: str) -> None:
        if self.names.complete:
            self.fail(loc, message, hint)


def parse_condition(
    raw: Any, loc: Loc, doc: YamlDocument, names: Names, errors: list[ConfigError]
) -> Node | None:
    """The node for ``raw``, or None after appending located errors."""
    return _node(raw, loc, _Parse(doc, names, errors), 0)


def _node(raw: Any, loc: Loc, p: _Parse, depth: int) -> Node | None:
    """``depth``: how many all / any / not groups ``raw`` is inside."""
    if isinstance(raw, str):
        return _name(raw, loc, p)
    if not isinstance(raw, dict) or not raw:
        p.fail(loc, "a condition is a name or a mapping such as {all: [...]}")
        return None
    keys = set(raw)
    if keys & {"all", "any", "not"} and depth == MAX_CONDITION_DEPTH:
        p.fail(loc, f"condition nested more than {MAX_CONDITION_DEPTH} levels deep",
               "simplify it: `{not: {not: X}}` is X, and an `all` inside an `all` joins its list")
        return None
    if keys in ({"all"}, {"any"}):
        return _group(next(iter(keys)), raw, loc, p, depth + 1)
    if keys == {"not"}:
        child = _node(raw["not"], (*loc, "not"), p, depth + 1)
        return None if child is None else Not(child)
    if keys == {"hook"}:
        return _hook(raw["hook"], loc, p)
    return _compare(raw, loc, p)


def _name(raw: str, loc: Loc, p: _Parse) -> Node | None:
    if raw in p.names.findings:
        return Ref(raw, "finding")
    if raw in p.names.conditions:
        return Ref(raw, "condition")
    p.unknown(loc, f"unknown finding or condition `{raw}`",
              did_you_mean(raw, [*p.names.findings, *p.names.conditions]))
    return None


def _group(key: str, raw: dict[str, Any], loc: Loc, p: _Parse, depth: int) -> Node | None:
    items = raw[key]
    if not isinstance(items, list) or not items:
        p.fail((*loc, key), f"`{key}` takes a non-empty list")
        return None
    children = [_node(c, (*loc, key, i), p, depth) for i, c in enumerate(items)]
    if any(c is None for c in children):
        return None
    return (AllOf if key == "all" else AnyOf)(tuple(children))  # type: ignore[arg-type]


def _hook(raw: Any, loc: Loc, p: _Parse) -> Node | None:
    hooks = raw if isinstance(raw, list) else [raw]
    bad = [h for h in hooks if not isinstance(h, str) or h not in HOOKS]
    if bad or not hooks:
        p.fail((*loc, "hook"), f"unknown hook {bad}; known: {list(HOOKS)}")
        return None
    return HookIs(frozenset(hooks))


def _compare(raw: dict[str, Any], loc: Loc, p: _Parse) -> Node | None:
    keys = set(raw)
    kinds = keys & set(COMPARE_KINDS)
    if len(kinds) != 1:
        known = ["all", "any", "not", "hook", *COMPARE_KINDS]
        unknown = sorted(keys - set(OPERATORS) - {"unknown"})
        hint = did_you_mean(unknown[0], known) if unknown else ""
        p.fail(loc, f"cannot read condition with keys {sorted(keys)}; expected "
                    "one of all/any/not/hook/score/duration/relief/count", hint)
        return None
    kind = kinds.pop()
    name = raw[kind]
    if not isinstance(name, str):
        p.fail((*loc, kind), f"`{kind}` takes the name of a {kind}, not {type(name).__name__}")
        return None
    known_names = p.names.by_kind(kind)
    if name not in known_names:
        p.unknown((*loc, kind), f"unknown {kind} `{name}`", did_you_mean(str(name), known_names))
        return None
    rest = keys - {kind}
    if rest == {"unknown"} and kind in ("duration", "relief"):
        if raw["unknown"] is not True:
            p.fail((*loc, "unknown"), "`unknown` can only be `true`")
            return None
        return Unknown(kind, name)
    if len(rest) != 1 or not rest <= set(OPERATORS):
        hint = did_you_mean(sorted(rest)[0], OPERATORS) if rest else ""
        p.fail(loc, f"`{kind}` needs exactly one of gt, ge, lt, le, eq", hint)
        return None
    op = rest.pop()
    return _threshold(kind, name, op, raw[op], (*loc, op), p)


def _threshold(kind: str, name: str, op: str, raw: Any, loc: Loc, p: _Parse) -> Node | None:
    value, error = resolve(raw, p.names.parameters, p.names.uses, f"a threshold on {kind} `{name}`",
                           p.doc, loc)
    if error is not None:
        p.errors.append(error)
        return None
    if isinstance(value, bool):  # YAML's true is no number, though Python counts it as 1
        p.fail(loc, f"bad threshold {value!r}: a threshold is a number")
        return None
    param = raw.strip() if value is not raw else None
    if param is not None and p.names.parameters[param].is_duration != (kind == "duration"):
        wanted = "a duration" if kind == "duration" else "a number"
        p.fail(loc, f"parameter `{param}` does not fit here: a {kind} threshold is {wanted}")
        return None
    try:
        value = positive_duration(value) if kind == "duration" else _number(kind, value)
    except (TypeError, ValueError) as exc:
        shown = f"parameter `{param}` ({p.names.parameters[param]})" if param else repr(value)
        p.fail(loc, f"bad threshold {shown}: {exc}")
        return None
    return Compare(kind, name, op, value, param)


# What a number threshold is compared with, and so the values it can meaningfully take.
NUMBER_RANGES = {"relief": (0.0, 100.0, "a percent relief is from 0 to 100"),
                 "count": (0.0, math.inf, "a count of records is 0 or more"),
                 "score": (-math.inf, math.inf, "a score threshold is a finite number")}


def _number(kind: str, raw: Any) -> float:
    value = float(raw)
    low, high, meaning = NUMBER_RANGES[kind]
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(meaning)
    return value


def references(node: Node) -> set[tuple[str, str]]:
    """The named conditions and scores ``node`` uses, as ("condition" | "score", name): what
    evaluating it evaluates in turn."""
    if isinstance(node, Ref):
        return {("condition", node.name)} if node.kind == "condition" else set()
    if isinstance(node, Compare):
        return {("score", node.name)} if node.kind == "score" else set()
    if isinstance(node, AllOf | AnyOf):
        return set().union(*(references(c) for c in node.children))
    if isinstance(node, Not):
        return references(node.child)
    return set()


def nesting_depth(node: Node, used: Mapping[tuple[str, str], int]) -> int:
    """Levels of all / any / not on the deepest path through ``node``, each named condition or
    score it uses adding a level and its own depth (``used``): evaluation recurses through all."""
    if isinstance(node, Ref | Compare):
        key = ("condition" if isinstance(node, Ref) else node.kind, node.name)
        return 1 + used[key] if key in used else 0
    if isinstance(node, AllOf | AnyOf):
        return 1 + max(nesting_depth(c, used) for c in node.children)
    if isinstance(node, Not):
        return 1 + nesting_depth(node.child, used)
    return 0
