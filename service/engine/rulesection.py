"""Compiling the ``rules:`` entries: conditions, suggestions, card templates, cases, suppression.

Each check is its own function returning located errors; ``compile_rules`` runs them all, so an
admin sees every problem of every rule at once.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from service.engine import model as m
from service.engine.compiled import CompiledRule, CompiledSuggestion
from service.engine.conditions import Names, parse_condition
from service.engine.parameters import placeholder_errors, render_text, template_uses
from service.engine.rulefiles import Entry, RuleFiles, validate
from service.engine.sections import Errors, Refs
from service.yamlsource import ConfigError, did_you_mean

Case = tuple[str, m.Case]  # rule id, one case of the rule's `tests:`


@dataclass(frozen=True)
class RuleContext:
    """What a rule may refer to besides findings and conditions."""

    names: Names
    refs: Refs
    # The values a summary or detail may name, worked out per call, and the widest text of each.
    template_widths: Mapping[str, int]
    override_reasons: Mapping[str, str]
    snooze_reasons: Collection[str]  # the codes that silence a rule (the service's settings)


def compile_rules(files: RuleFiles, ctx: RuleContext
                  ) -> tuple[tuple[list[CompiledRule], list[Case]], Errors]:
    """Every valid rule compiled, in evaluation order, and its test cases."""
    entries, errors = _validated_rules(files)
    entries = [(entry, _with_parameters(entry, rule, ctx, errors)) for entry, rule in entries]
    targets, tier_errors = _suppression_targets(entries)
    errors += tier_errors
    compiled: list[CompiledRule] = []
    cases: list[Case] = []
    for entry, rule in entries:
        rule = rule.model_copy(update={"suppresses": targets[rule.id]})
        rule_errors: Errors = []
        when = parse_condition(rule.when, (*entry.loc, "when"), entry.doc, ctx.names, rule_errors)
        suggestions = _suggestions(entry, rule, ctx, rule_errors)
        rule_errors += _references(entry, rule, ctx)
        rule_errors += _case_errors(entry, rule, ctx.refs)
        errors += rule_errors
        cases += [(rule.id, case) for case in rule.tests]
        if when is not None:
            line = entry.doc.position((*entry.loc, "id"))[0]
            compiled.append(CompiledRule(rule, when, tuple(suggestions), entry.doc.path, line))
    errors += _precedence_errors(entries)
    errors += _case_id_errors(entries)
    # Red-flag rules run first, so the routine rules they suppress are always after them.
    compiled.sort(key=lambda r: (not r.spec.red_flag, r.spec.precedence, r.id))
    return (compiled, cases), errors


TEXT_KEYS = ("title", "description", "summary", "detail")


def _with_parameters(entry: Entry, rule: m.Rule, ctx: RuleContext, errors: Errors) -> m.Rule:
    """The rule with the parameters named in its texts filled in (``{imaging_wait}``), so a
    card always states the value in force. A summary and a detail may also name the values
    worked out per call, left to be filled then; a title or description names nothing else."""
    params = ctx.names.parameters
    update: dict[str, str] = {}
    for key in TEXT_KEYS:
        text = getattr(rule, key)
        if text is None:
            continue
        loc = (*entry.loc, key)
        ctx.names.uses.extend(template_uses(text, params, entry.doc, loc))
        per_request = ctx.template_widths if key in ("summary", "detail") else {}
        problems = placeholder_errors(text, params, entry.doc, loc, per_request)
        errors += problems
        if problems:
            continue
        update[key] = render_text(text, params)
        if not per_request:
            update[key] = update[key].format()
        elif key == "summary":
            errors += _summary_width(entry, update[key], per_request)
    return rule.model_copy(update=update)


def _suppression_targets(entries: list[tuple[Entry, m.Rule]]
                         ) -> tuple[dict[str, list[str]], Errors]:
    """Every rule each rule hides: its list, and for a red-flag rule every routine rule."""
    routine = [rule.id for _, rule in entries if not rule.red_flag]
    red_flags = {rule.id for _, rule in entries if rule.red_flag}
    errors: Errors = []
    out: dict[str, list[str]] = {}
    for entry, rule in entries:
        by_tier = rule.red_flag and rule.suppresses_routine is not False
        if rule.suppresses_routine and not rule.red_flag:
            errors.append(entry.error(("suppresses_routine",), "only a red-flag rule suppresses "
                                      "the routine tier", "list the rules in `suppresses`"))
        for j, target in enumerate(rule.suppresses):
            if by_tier and target in routine:
                errors.append(entry.error(("suppresses", j), f"`{target}` is a routine rule, "
                                          "already suppressed by this red-flag rule",
                                          "remove it from the list"))
            elif not rule.red_flag and target in red_flags:
                errors.append(entry.error(("suppresses", j), f"a routine rule cannot suppress "
                                          f"the red-flag rule `{target}`"))
        extra = [t for t in routine if by_tier and t not in rule.suppresses]
        out[rule.id] = [*rule.suppresses, *extra]
    return out, errors


def _validated_rules(files: RuleFiles) -> tuple[list[tuple[Entry, m.Rule]], Errors]:
    """Rules that validate, the first of each id; duplicates and invalid ones reported."""
    errors: Errors = []
    out: list[tuple[Entry, m.Rule]] = []
    first: dict[str, Entry] = {}
    for entry in files.rules:
        rule, problems = validate(entry.doc, m.Rule, entry.value, entry.loc)
        errors += problems
        if rule is None:
            continue
        if rule.id in first:
            other = first[rule.id]
            errors.append(entry.error(("id",), f"duplicate rule id `{rule.id}` (first at "
                                               f"{other.doc.path}:"
                                               f"{other.doc.position((*other.loc, 'id'))[0]})"))
            continue
        first[rule.id] = entry
        out.append((entry, rule))
    return out, errors


def _suggestions(entry: Entry, rule: m.Rule, ctx: RuleContext, errors: Errors
                 ) -> list[CompiledSuggestion]:
    out = []
    for j, sug in enumerate(rule.suggest):
        sub = ("suggest", j)
        if (sug.order is None) == (sug.delete_drafts is None):
            errors.append(entry.error(sub, "a suggestion has exactly one of `order` or "
                                           "`delete_drafts`"))
        errors += ctx.refs.check(entry, (*sub, "order"), sug.order, "orders")
        errors += ctx.refs.check_finding(entry, (*sub, "delete_drafts"), sug.delete_drafts,
                                         "draft-orders")
        node = None
        if sug.when is not None:
            node = parse_condition(sug.when, (*entry.loc, *sub, "when"), entry.doc, ctx.names,
                                   errors)
        out.append(CompiledSuggestion(sug, node))
    return out


def _red_flag_advice(entry: Entry, rule: m.Rule) -> Errors:
    """A red-flag rule never advises against imaging: while any red flag is recorded no card
    may advise removing a draft or rate it not appropriate (reference §2.0.1), so such a card
    would be withheld whenever its own evidence is there."""
    if not rule.red_flag:
        return []
    keys = [("pama_rating",)] if rule.pama_rating == "not-appropriate" else []
    keys += [("suggest", j, "delete_drafts") for j, s in enumerate(rule.suggest) if s.delete_drafts]
    return [entry.error(key, f"the red-flag rule `{rule.id}` advises against a draft order, which "
                             "no card may do while a red flag is recorded: its card would never "
                             "show", "suggest an order, or rate the draft appropriate")
            for key in keys]


def _references(entry: Entry, rule: m.Rule, ctx: RuleContext) -> Errors:
    refs = ctx.refs
    errors: Errors = _red_flag_advice(entry, rule)
    for j, target in enumerate(rule.suppresses):
        errors += refs.check(entry, ("suppresses", j), target, "rules")
    for j, name in enumerate(rule.reason_from):
        errors += refs.check(entry, ("reason_from", j), name, "findings")
    for j, source in enumerate(rule.cite):
        errors += refs.check(entry, ("cite", j), source, "sources")
    for j, code in enumerate(rule.override_reasons):
        if code not in ctx.override_reasons:
            errors.append(entry.error(("override_reasons", j), f"unknown override reason `{code}`",
                                      did_you_mean(code, ctx.override_reasons)))
        elif rule.red_flag and code in ctx.snooze_reasons:
            errors.append(entry.error(
                ("override_reasons", j), f"snooze reason `{code}` on the red-flag rule "
                f"`{rule.id}`: a red flag is never silenced, so the card would promise a "
                "snooze that is not applied", "offer a reason that does not snooze"))
    return errors


def _summary_width(entry: Entry, text: str, widths: Mapping[str, int]) -> Errors:
    """The summary as wide as the card can show it, each placeholder at its widest text."""
    fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    width = len(text.format(**{f: "x" * widths[f] for f in fields}))
    if width <= m.SUMMARY_LIMIT:
        return []
    return [entry.error(("summary",), f"summary is {width} characters; the limit is {m.SUMMARY_LIMIT}",
                        f"CDS Hooks clients reject {m.SUMMARY_LIMIT + 1} or more; move the rest to "
                        "`detail`")]


def _case_errors(entry: Entry, rule: m.Rule, refs: Refs) -> Errors:
    errors: Errors = []
    for j, case in enumerate(rule.tests):
        for key in ("expect", "absent"):
            for k, rule_id in enumerate(getattr(case, key)):
                errors += refs.check(entry, ("tests", j, key, k), rule_id, "rules")
        if case.fixture is None and not case.resources and case.age is None:
            errors.append(entry.error(("tests", j), "a case needs `fixture`, `resources` or `age`"))
    return errors


def _case_id_errors(rules: list[tuple[Entry, m.Rule]]) -> Errors:
    """A case id names one case in the whole rule set; a second use is located, naming the first."""
    errors: Errors = []
    first: dict[str, tuple[str, int]] = {}
    for entry, rule in rules:
        for j, case in enumerate(rule.tests):
            loc = ("tests", j, "id")
            line = entry.doc.position((*entry.loc, *loc))[0]
            if case.id in first:
                file, at = first[case.id]
                errors.append(entry.error(loc, f"case id `{case.id}` is used twice (first at {file}:{at})",
                                          "give each case an id of its own"))
            else:
                first[case.id] = (entry.doc.path, line)
    return errors


def _precedence_errors(rules: list[tuple[Entry, m.Rule]]) -> Errors:
    """Listed suppression must run from higher to lower precedence; a cycle is named in full."""
    errors: Errors = []
    by_id = {rule.id: (entry, rule) for entry, rule in rules}
    for entry, rule in rules:
        for j, target in enumerate(rule.suppresses):
            other = by_id.get(target)
            if other is not None and other[1].precedence < rule.precedence:
                errors.append(entry.error(
                    ("suppresses", j),
                    f"`{rule.id}` (precedence {rule.precedence}) cannot suppress "
                    f"`{target}` (precedence {other[1].precedence}), which outranks it",
                    "lower numbers win; swap the precedences or remove the suppression",
                ))
    graph = {rid: [t for t in rule.suppresses if t in by_id] for rid, (_, rule) in by_id.items()}
    return errors + _cycle_errors(graph, by_id)


def _cycle_errors(graph: Mapping[str, list[str]],
                  by_id: Mapping[str, tuple[Entry, m.Rule]]) -> list[ConfigError]:
    errors: list[ConfigError] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                errors.append(by_id[node][0].error(("suppresses",),
                                                   "precedence cycle: " + " -> ".join(cycle)))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for rid in graph:
        if rid not in state:
            visit(rid, [rid])
    return errors
