"""Evaluation: facts + compiled rule set -> decisions and a trace a person can follow.

Pure functions of their inputs: no I/O, no clock (``now`` is passed in), no global state, so the
CLI, the tests and the web layer get the same answer for the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any

from service.engine import dates
from service.engine import model as m
from service.engine.cardtext import days_text, number_text, relief_text, side_text
from service.engine.codes import TEXT
from service.engine.conditions import OPERATORS as OPS
from service.engine.conditions import AllOf, AnyOf, Compare, HookIs, Node, Not, Ref, Unknown
from service.engine.facts import Fact, FactBase, normalise, red_flag_reasons
from service.engine.laterality import BOTH, combine
from service.engine.ruleset import CompiledFinding, CompiledRule, RuleSet

RED_FLAG_ONLY_NOTE = "counted for red flags only"


@dataclass(slots=True)
class Evidence:
    """A matched fact as the card and the audit show it; not changed once made (not frozen,
    as :class:`Fact`, because a request makes dozens)."""

    ref: str
    finding: str
    display: str
    date: str | None
    tentative: bool
    present: bool
    laterality: str | None
    resource_type: str
    coding: tuple[str, str] | None
    doubts: tuple[str, ...] = ()

    @classmethod
    def of(cls, fact: Fact, finding: str, doubts: tuple[str, ...] = ()) -> Evidence:
        first = fact.codes[0] if fact.codes else None
        coding = first if first and first[0] != TEXT and not first[1].startswith("~") else None
        return cls(fact.ref, finding, fact.display, fact.date_text, fact.tentative, fact.present,
                   fact.laterality, fact.resource_type, coding, doubts)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "finding": self.finding, "display": self.display}
        if self.date:
            out["date"] = self.date
        if self.tentative:
            out["note"] = RED_FLAG_ONLY_NOTE
        if self.doubts:
            out["uncertain"] = list(self.doubts)
        if not self.present:
            out["absent"] = True
        if self.laterality:
            out["laterality"] = self.laterality
        return out


@dataclass(frozen=True)
class PlannedSuggestion:
    """What a card will offer: create a coded order, or delete draft orders."""

    label: str
    order: m.Order | None = None
    priority: str | None = None
    delete_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    rule_id: str
    mode: str
    rule: m.Rule
    summary: str
    detail: str
    evidence: tuple[Evidence, ...]
    suggestions: tuple[PlannedSuggestion, ...]
    laterality: str | None
    reasons: tuple[tuple[str, str, str], ...]
    sources: tuple[m.Source, ...]
    override_reasons: tuple[tuple[str, str], ...]

    @property
    def tentative(self) -> bool:
        return any(e.tentative for e in self.evidence)

    @property
    def uncertain(self) -> bool:
        return any(e.doubts for e in self.evidence)


@dataclass(frozen=True)
class Evaluation:
    decisions: tuple[Decision, ...]
    # Built when first read: the hook path never reads it, the CLI and the rule tests do.
    trace_of: Callable[[], dict[str, Any]] = field(compare=False, repr=False)
    ruleset_version: str
    pama: Mapping[str, str] = field(default_factory=dict)
    drafts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # {"excluded": {reason: records}, "uncertain": {date|status|uncoded: records}}
    data_quality: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: {"excluded": {}, "uncertain": {}})

    @cached_property
    def trace(self) -> dict[str, Any]:
        """The trace a person can follow: inputs, facts, derived values, every rule's outcome."""
        return self.trace_of()

    @property
    def active(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.mode == "active")

    @property
    def shadow(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.mode == "shadow")

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(d.rule_id for d in self.decisions)


@dataclass
class Relief:
    percent: float
    evidence: list[Evidence]
    laterality: str | None


class Evaluator:
    """Memoised look-ups for one request; discarded afterwards. Public for ``whynot``, which
    asks the same questions of the same facts to say why a rule did not fire."""

    def __init__(self, ruleset: RuleSet, facts: FactBase, now: datetime, hook: str):
        self.rs = ruleset
        self.facts = facts
        self.now = now
        self.hook = hook
        self._latest = now + timedelta(days=1)  # a record dated today counts, whatever its zone
        self._matches: dict[str, list[Fact]] = {}
        self._found: dict[str, tuple[Evidence, ...]] = {}
        self._conditions: dict[str, tuple[bool, Sequence[Evidence]]] = {}
        self._doubts: dict[tuple[str, str], tuple[str, ...]] = {}
        self._scores: dict[str, tuple[float, list[Evidence], list[dict[str, Any]]]] = {}
        self._durations: dict[str, tuple[timedelta | None, list[Evidence]]] = {}
        self._reliefs: dict[str, Relief | None] = {}

    # ------------------------------------------------------------ findings

    def matches(self, name: str) -> list[Fact]:
        if name not in self._matches:
            self._matches[name] = self._match(name)
        return self._matches[name]

    def evidence(self, fact: Fact, name: str) -> Evidence:
        return Evidence.of(fact, name, self._doubts.get((name, fact.ref), ()))

    def found(self, name: str) -> tuple[Evidence, ...]:
        """The evidence of every fact the finding matched (made once: conditions ask often)."""
        found = self._found.get(name)
        if found is None:
            evidence = self.evidence
            found = self._found[name] = tuple([evidence(f, name) for f in self.matches(name)])
        return found

    def _in_window(self, fact: Fact, spec: m.Finding) -> bool:
        """Inside the finding's window; an uncertain date is only for red flags, and then
        counts unless the date surely falls outside (§2.0.1)."""
        assert spec.within is not None
        if fact.date_doubt and spec.statuses == "routine":
            return False
        if fact.date_doubt in (dates.MISSING, dates.UNREADABLE, dates.FUTURE) \
                or fact.when is None or fact.until is None:
            return True
        earliest, latest = self.now - spec.within, self._latest
        if fact.when == fact.until:  # an instant
            return earliest <= fact.when <= latest
        return fact.when <= latest and fact.until > earliest  # a day, month or year

    def _match(self, name: str) -> list[Fact]:
        candidates = self.facts.by_finding.get(name)
        if not candidates:  # most findings: no record carries their codes
            return []
        finding = self.rs.findings[name]
        spec = finding.spec
        out = [f for f in candidates if _record_counts(f, spec) and self._fits(f, finding)]
        if spec.laterality == BOTH and combine(f.laterality for f in out) != BOTH:
            out = []
        # Oldest first; the reference breaks ties, so the order never depends on set iteration
        # (which differs between worker processes) and every worker gives the same answer.
        out.sort(key=lambda f: (f.when is None, f.when, f.ref))
        self._note_doubts(name, spec, out)
        return out

    def _fits(self, fact: Fact, finding: CompiledFinding) -> bool:
        """The fact falls in the finding's window and value range, at its body site and side."""
        spec = finding.spec
        if spec.within is not None and not self._in_window(fact, spec):
            return False
        if spec.value is not None and not _value_ok(fact, spec.value):
            return False
        return _on_site(fact, finding) and (not spec.side_of
                                            or self._same_side(fact, spec.side_of))

    def _note_doubts(self, name: str, spec: m.Finding, facts: Iterable[Fact]) -> None:
        """Remember why each counted fact is uncertain, for its evidence."""
        for fact in facts:
            doubts = fact.doubts
            if spec.within is not None and fact.date_doubt:
                doubts = (fact.date_doubt, *doubts)
            if doubts:
                self._doubts[(name, fact.ref)] = doubts

    def red_flag_evidence(self, drafts: Iterable[Fact] = ()) -> list[Evidence]:
        """Every present red-flag finding, certain or uncertain, whether or not a rule fired,
        and each of ``drafts`` ordered for one (its reasonCode names it, "r/o cauda equina"):
        the clinician suspects that red flag, so no card may advise against the order
        (§2.0.1, order time)."""
        found = [self.evidence(f, name) for name in self.rs.red_flag_findings
                 for f in self.matches(name)]
        return found + [self.evidence(draft, name) for draft in drafts
                        for name in red_flag_reasons(draft.resource, self.rs)]

    def _same_side(self, fact: Fact, findings: Sequence[str]) -> bool:
        """False only when both sides are known and differ: an injection of the other hip
        says nothing about this pain."""
        if fact.laterality is None or fact.laterality == BOTH:
            return True
        sides = {f.laterality for n in findings for f in self.matches(n) if f.laterality}
        return not sides or BOTH in sides or fact.laterality in sides

    # ------------------------------------------------------------ derived facts

    def score(self, name: str) -> tuple[float, list[Evidence], list[dict[str, Any]]]:
        if name not in self._scores:
            total, evidence, parts = 0.0, [], []
            for comp, node in self.rs.scores[name].components:
                ok, ev = self.truth(node)
                if ok:
                    total += comp.weight
                    evidence += ev
                    parts.append({"feature": comp.feature, "weight": comp.weight,
                                  "matched": sorted({e.ref for e in ev})})
            self._scores[name] = (total, evidence, parts)
        return self._scores[name]

    def duration(self, name: str) -> tuple[timedelta | None, list[Evidence]]:
        if name not in self._durations:
            spec = self.rs.durations[name]
            result: tuple[timedelta | None, list[Evidence]] = (None, [])
            for group in (spec.findings, spec.fallback):
                # An uncertain or future onset is an unknown duration (§2.0.1).
                dated = [(f, n) for n in group for f in self.matches(n)
                         if f.sure_when is not None]
                if dated:
                    fact, finding = min(dated, key=lambda p: p[0].when)
                    result = (self.now - fact.when, [self.evidence(fact, finding)])
                    break
            self._durations[name] = result
        return self._durations[name]

    def relief(self, name: str) -> Relief | None:
        if name not in self._reliefs:
            self._reliefs[name] = self._relief(self.rs.reliefs[name])
        return self._reliefs[name]

    def _relief(self, spec: m.PercentRelief) -> Relief | None:
        """Relief after the latest procedure that has a figure: reported, else from scores."""
        procedures = sorted((f for f in self.matches(spec.procedure) if f.when is not None),
                            key=lambda f: f.when, reverse=True)
        for proc in procedures:
            relief = self._reported_relief(proc, spec)
            if relief is None:
                relief = self._scored_relief(proc, spec)
            if relief is not None:
                return relief
        return None

    def _reported_relief(self, proc: Fact, spec: m.PercentRelief) -> Relief | None:
        """The latest percentage recorded as part of the procedure."""
        if not spec.reported:
            return None
        reported = [f for f in self.matches(spec.reported)
                    if proc.ref in f.part_of and f.value is not None]
        if not reported:
            return None
        latest = max(reported, key=lambda f: (f.when is not None, f.when))
        return Relief(latest.value, [self.evidence(proc, spec.procedure),
                                     self.evidence(latest, spec.reported)], proc.laterality)

    def _scored_relief(self, proc: Fact, spec: m.PercentRelief) -> Relief | None:
        """The last pain score before the procedure against the lowest one in the window after
        it; none when the score before is too low to measure relief against."""
        pre, post = self._pain_scores(proc, spec)
        if not pre or not post:
            return None
        before = max(pre, key=lambda f: f.when)
        after = min(post, key=lambda f: f.value)
        if before.value <= 0 or before.value < spec.min_before_score:
            return None
        percent = (before.value - after.value) / before.value * 100
        return Relief(percent, [self.evidence(proc, spec.procedure),
                                self.evidence(before, spec.pain_score),
                                self.evidence(after, spec.pain_score)], proc.laterality)

    def _pain_scores(self, proc: Fact, spec: m.PercentRelief) -> tuple[list[Fact], list[Fact]]:
        """Dated scores of this procedure (or of none) in the windows before and after it."""
        scores = [f for f in self.matches(spec.pain_score)
                  if f.value is not None and f.when is not None
                  and (not f.part_of or proc.ref in f.part_of)]
        pre = [f for f in scores if proc.when - spec.before <= f.when <= proc.when]
        post = [f for f in scores
                if proc.when + spec.after_min <= f.when <= proc.when + spec.after_max]
        return pre, post

    # ------------------------------------------------------------ conditions

    def truth(self, node: Node) -> tuple[bool, Sequence[Evidence]]:
        """Whether the condition holds, and its evidence (never to be changed by the caller:
        named conditions and findings answer from a memo)."""
        if isinstance(node, Ref):
            if node.kind == "condition":
                if node.name not in self._conditions:
                    self._conditions[node.name] = self.truth(self.rs.conditions[node.name])
                return self._conditions[node.name]
            found = self._found.get(node.name)  # asked often: the memo first, without a call
            if found is None:
                found = self.found(node.name)
            return bool(found), found
        if isinstance(node, AllOf):
            evidence: list[Evidence] = []
            for child in node.children:
                ok, ev = self.truth(child)
                if not ok:
                    return False, []
                evidence += ev
            return True, evidence
        if isinstance(node, AnyOf):  # every branch, for all the evidence
            held, evidence = False, []
            for child in node.children:
                ok, ev = self.truth(child)
                if ok:
                    held = True
                    evidence += ev
            return held, evidence
        if isinstance(node, Not):
            return not self.truth(node.child)[0], []
        if isinstance(node, HookIs):
            return self.hook in node.hooks, []
        if isinstance(node, Unknown):
            known = (self.duration(node.name)[0] if node.kind == "duration"
                     else self.relief(node.name))
            return known is None, []
        if isinstance(node, Compare):
            return self._compare(node)
        raise TypeError(f"unknown condition node {node!r}")

    def _compare(self, node: Compare) -> tuple[bool, Sequence[Evidence]]:
        if node.kind == "score":
            value, evidence, _ = self.score(node.name)
        elif node.kind == "duration":
            value, evidence = self.duration(node.name)
        elif node.kind == "relief":
            relief = self.relief(node.name)
            value, evidence = (relief.percent, relief.evidence) if relief else (None, [])
        else:
            evidence = self.found(node.name)
            value = len(evidence)
        if value is None:
            return False, []
        ok = OPS[node.op](value, node.value)
        return ok, evidence if ok else []

    # ------------------------------------------------------------ presentation values

    def template_value(self, name: str) -> str:
        """A score, duration or relief as a card's text states it."""
        if name in self.rs.scores:
            return number_text(self.score(name)[0])
        if name in self.rs.durations:
            value = self.duration(name)[0]
            return days_text(value.days if value is not None else None)
        if name in self.rs.reliefs:
            relief = self.relief(name)
            return relief_text(relief.percent if relief else None)
        raise KeyError(name)

    def derived_trace(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.rs.scores:
            value, _, parts = self.score(name)
            out[name] = {"score": value, "components": parts}
        for name in self.rs.durations:
            value, ev = self.duration(name)
            out[name] = ({"days": value.days, "from": ev[0].as_dict()} if value is not None
                         else {"days": None})
        for name in self.rs.reliefs:
            relief = self.relief(name)
            out[name] = ({"percent": round(relief.percent, 1),
                          "evidence": [e.as_dict() for e in relief.evidence]}
                         if relief else {"percent": None})
        return out


class _TemplateValues(dict[str, str]):
    """The values a card's text names, each worked out only when the text names it."""

    def __init__(self, ev: Evaluator, side: str | None) -> None:
        super().__init__(side=side_text(side))
        self.ev = ev

    def __missing__(self, name: str) -> str:
        self[name] = value = self.ev.template_value(name)
        return value


def _value_ok(fact: Fact, compare: m.ValueCompare) -> bool:
    if fact.value is None:
        return False
    if compare.unit is not None and fact.unit not in (None, compare.unit):
        return False
    return all(OPS[op](fact.value, limit) for op in OPS
               if (limit := getattr(compare, op)) is not None)


def _record_counts(fact: Fact, spec: m.Finding) -> bool:
    """The kind of record, its source and its status count for the finding (§2.0)."""
    if fact.resource_type not in spec.resources:
        return False
    if fact.draft != (spec.source == "draft-orders"):
        return False
    if (fact.tentative or fact.doubts) and spec.statuses != "red-flag":
        return False
    return _current_enough(fact, spec) and fact.present == (spec.presence == "present")


def _current_enough(fact: Fact, spec: m.Finding) -> bool:
    """A resolved condition still counts for a windowed red flag when it began in the window;
    it never feeds current pattern scores (§2.0.1)."""
    if fact.resource_type != "Condition" or fact.current or spec.history:
        return True
    return spec.statuses == "red-flag" and spec.within is not None and fact.date_doubt is None


def _on_site(fact: Fact, finding: CompiledFinding) -> bool:
    """At the finding's body site and on its side, where it names them."""
    if finding.body_sites is not None and not finding.body_sites & fact.body_sites:
        return False
    return finding.spec.laterality in (None, BOTH) or fact.laterality == finding.spec.laterality


def _side(evidence: Iterable[Evidence]) -> str | None:
    return combine(e.laterality for e in evidence if not e.ref.startswith("Service"))


def _reasons(rule: m.Rule, evidence: Sequence[Evidence]) -> tuple[tuple[str, str, str], ...]:
    """reasonCode candidates: the rule's named findings first, else Conditions then Observations."""
    usable = [e for e in evidence if e.present and e.coding
              and e.resource_type in ("Condition", "Observation")]
    if rule.reason_from:
        named = [e for e in usable if e.finding in rule.reason_from]
        usable = named or usable
    usable.sort(key=lambda e: e.resource_type != "Condition")
    out: dict[tuple[str, str], str] = {}
    for e in usable:
        out.setdefault(e.coding, e.display)
    return tuple((s, c, d) for (s, c), d in list(out.items())[:2])


def _dedupe(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    seen: dict[str, Evidence] = {}
    for e in evidence:
        seen.setdefault(e.ref, e)
    return tuple(seen.values())


def _age(facts: FactBase, now: datetime) -> int | None:
    born = facts.birth_date
    if born is None:
        return None
    today = now.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _decide(ev: Evaluator, rule: CompiledRule, evidence: Sequence[Evidence]) -> Decision:
    spec = rule.spec
    evidence_t = _dedupe(evidence)
    side = _side(evidence_t)
    values = _TemplateValues(ev, side)
    return Decision(
        rule_id=spec.id, mode=spec.mode, rule=spec,
        summary=spec.summary.format_map(values), detail=spec.detail.format_map(values).strip(),
        evidence=evidence_t, suggestions=_plan_suggestions(ev, rule), laterality=side,
        reasons=_reasons(spec, evidence_t),
        sources=tuple(ev.rs.sources[s] for s in spec.cite),
        override_reasons=tuple((c, ev.rs.override_reasons[c]) for c in spec.override_reasons),
    )


def _plan_suggestions(ev: Evaluator, rule: CompiledRule) -> tuple[PlannedSuggestion, ...]:
    """The rule's suggestions whose own condition holds; removing drafts only when some match."""
    planned = []
    for sug in rule.suggestions:
        if sug.when is not None and not ev.truth(sug.when)[0]:
            continue
        s = sug.spec
        if s.order is not None:
            order = ev.rs.orders[s.order]
            planned.append(PlannedSuggestion(s.label or order.title, order, s.priority))
            continue
        refs = tuple(f.ref for f in ev.matches(s.delete_drafts or ""))
        if refs:
            planned.append(PlannedSuggestion(s.label or "Remove the draft order",
                                             delete_refs=refs))
    return tuple(planned)


def _pama(ev: Evaluator, decisions: Sequence[Decision]) -> dict[str, str]:
    """PAMA-style rating per imaging draft: a guard that matched it rates it not appropriate, a
    rule suggesting the same order rates it appropriate; with neither, no rating is determined
    and the draft gets none (the PAMA guide forbids a systemAction without a rating)."""
    if ev.rs.pama_finding is None:
        return {}
    ratings: dict[str, str] = {}
    for draft in ev.matches(ev.rs.pama_finding):
        rating = _pama_rating(draft, decisions)
        if rating is not None:
            ratings[draft.ref] = rating
    return ratings


def _pama_rating(draft: Fact, decisions: Sequence[Decision]) -> str | None:
    """The rating of the first active rating rule, in precedence order, that speaks of the draft."""
    for d in decisions:
        if d.mode == "active" and d.rule.pama_rating is not None and _rates(d, draft):
            return d.rule.pama_rating
    return None


def _rates(decision: Decision, draft: Fact) -> bool:
    """A not-appropriate guard rates the drafts it matched; an appropriate rule rates the drafts
    of an order it suggests."""
    if decision.rule.pama_rating == "not-appropriate":
        return any(e.ref == draft.ref for e in decision.evidence)
    codes = set(draft.codes)
    return any(codes & {(c.system, c.code) for c in s.order.codes}
               for s in decision.suggestions if s.order)


def call_facts(ruleset: RuleSet, resources: Iterable[Mapping[str, Any]], *, now: datetime,
               hook: str, draft_orders: Sequence[Mapping[str, Any]] = (),
               selections: Sequence[str] = (), patient_id: str | None = None) -> FactBase:
    """The facts one call is judged on, for the answer and for its explanation alike: only the
    context patient's records, dates after ``now`` uncertain, and the clinician's selections
    counted only on order-select (the one hook where they mean a choice)."""
    return normalise(ruleset, resources, now=now, patient_id=patient_id,
                     draft_orders=draft_orders,
                     selections=selections if hook == "order-select" else ())


def evaluate(
    ruleset: RuleSet,
    resources: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    hook: str = "patient-view",
    draft_orders: Sequence[Mapping[str, Any]] = (),
    selections: Sequence[str] = (),
    patient_id: str | None = None,
    silenced: Collection[str] = (),
) -> Evaluation:
    """Run every enabled rule in precedence order; suppressed and ineligible rules are traced.

    With ``patient_id``, records of anyone else are excluded before any rule sees them.
    ``silenced`` are rules this patient's clinicians snoozed: a routine one that fires is traced as
    snoozed and makes neither a card nor a PAMA rating, but still suppresses what it would have
    suppressed (snoozing a card must not bring up the cards it stood in front of). A red flag is
    never silenced.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    facts = call_facts(ruleset, resources, now=now, hook=hook, draft_orders=draft_orders,
                       selections=selections, patient_id=patient_id)
    ev = Evaluator(ruleset, facts, now, hook)
    ordered = [f for f in facts.facts if f.draft and f.resource is not None]
    rules = _RulePass(ev, _age(facts, now), ev.red_flag_evidence(ordered), silenced)
    rule_trace = [rules.run(rule) for rule in ruleset.rules]
    pama = _pama(ev, rules.decisions)
    drafts = {f.ref: f.resource for f in ordered}
    quality = {"excluded": dict(sorted(facts.excluded.items())),
               "uncertain": _uncertain_counts(rules.red_flag_evidence)}
    return Evaluation(tuple(rules.decisions), partial(_trace, ev, rules.age, rule_trace, pama),
                      ruleset.full_version, pama, drafts, quality)


class _RulePass:
    """One pass over the rules in precedence order: each rule's trace entry, the decisions made
    so far and the rules they suppress."""

    def __init__(self, ev: Evaluator, age: int | None, red_flag_evidence: list[Evidence],
                 silenced: Collection[str]):
        self.ev = ev
        self.age = age
        self.red_flag_evidence = red_flag_evidence
        self.silenced = silenced
        self.suppressed_by: dict[str, str] = {}
        self.decisions: list[Decision] = []

    def run(self, rule: CompiledRule) -> dict[str, Any]:
        """The rule's trace entry; a decision is kept when it makes a card or a shadow record."""
        spec = rule.spec
        entry: dict[str, Any] = {"rule": spec.id, "precedence": spec.precedence, "mode": spec.mode}
        skipped = self._not_evaluated(spec)
        if skipped:
            entry["status"] = skipped
            return entry
        fired, evidence = self.ev.truth(rule.when)
        entry["fired"] = fired
        if not fired:
            entry["status"] = "did not fire"
            return entry
        entry["matched"] = _dedupe(evidence)  # as dicts when the trace is read (_rule_trace)
        entry.update(self._outcome(rule, evidence))
        return entry

    def _not_evaluated(self, spec: m.Rule) -> str | None:
        """Why the rule is not evaluated for this call, if it is not."""
        if not spec.enabled:
            return "disabled"
        if spec.hooks is not None and self.ev.hook not in spec.hooks:
            return "not evaluated for this hook"
        barred = self._age_bar(spec)
        if barred:
            return barred
        if self.ev.facts.deceased:
            return "patient deceased: no cards"
        return None

    def _age_bar(self, spec: m.Rule) -> str | None:
        """Pattern rules are for adults; an emergency sign is acted on at any age."""
        if spec.red_flag:
            return None
        elig = self.ev.rs.eligibility
        if self.age is not None and self.age < elig.min_age_years:
            return f"patient younger than {elig.min_age_years}"
        if self.age is None and elig.unknown_age == "red-flags-only":
            return "age unknown: red-flag rules only"
        return None

    def _outcome(self, rule: CompiledRule, evidence: Sequence[Evidence]) -> dict[str, Any]:
        """What became of a rule that fired: suppressed, withheld, snoozed, a card or shadow."""
        spec = rule.spec
        if spec.id in self.suppressed_by:
            return {"status": "suppressed", "suppressedBy": self.suppressed_by[spec.id]}
        if self.red_flag_evidence and _advises_against_draft(rule):
            # Never tell a clinician to cancel imaging while any red flag is recorded (§2.0.1).
            return {"status": "withheld: red-flag evidence recorded",
                    "redFlagEvidence": _dedupe(self.red_flag_evidence)}
        self._suppress_targets(spec)
        outcome: dict[str, Any] = {}
        if spec.id in self.silenced and spec.mode == "active":
            if not spec.red_flag:
                return {"status": "snoozed"}
            outcome["snooze"] = "not honoured: red flag"
        self.decisions.append(_decide(self.ev, rule, evidence))
        outcome["status"] = "shadow" if spec.mode == "shadow" else "card"
        return outcome

    def _suppress_targets(self, spec: m.Rule) -> None:
        """An active rule that fires suppresses its targets, whether or not it was snoozed."""
        if spec.mode == "active":
            for target in spec.suppresses:
                self.suppressed_by.setdefault(target, spec.id)


def _trace(ev: Evaluator, age: int | None, rules: list[dict[str, Any]],
           pama: Mapping[str, str]) -> dict[str, Any]:
    """The trace a person can follow: inputs, facts, derived values and every rule's outcome."""
    facts = ev.facts
    trace: dict[str, Any] = {
        "ruleset": {"name": ev.rs.name, "version": ev.rs.full_version},
        "now": ev.now.isoformat(),
        "hook": ev.hook,
        "patient": {"ref": facts.patient_ref, "ageYears": age},
        "input": facts.trace(),
        "facts": [_fact_trace(f) for f in facts.facts],
        "derived": ev.derived_trace(),
        "rules": [_rule_trace(entry) for entry in rules],
    }
    if pama:
        trace["pama"] = pama
    return trace


def _rule_trace(entry: dict[str, Any]) -> dict[str, Any]:
    """A rule's entry as the trace shows it: the pass keeps its evidence as Evidence, since the
    hook path never reads the trace."""
    return {key: [e.as_dict() for e in value] if key in ("matched", "redFlagEvidence") else value
            for key, value in entry.items()}


def _advises_against_draft(rule: CompiledRule) -> bool:
    """A guard that would suggest deleting a draft or rate it not appropriate."""
    return rule.spec.pama_rating == "not-appropriate" or any(
        s.spec.delete_drafts for s in rule.suggestions)


def _uncertain_counts(evidence: Iterable[Evidence]) -> dict[str, int]:
    """Records counted although uncertain, per kind of doubt (each record once per kind)."""
    kinds: dict[str, set[str]] = {}
    for e in evidence:
        for doubt in e.doubts:
            kinds.setdefault(doubt.split()[0], set()).add(e.ref)
    return {kind: len(refs) for kind, refs in sorted(kinds.items())}


def _fact_trace(fact: Fact) -> dict[str, Any]:
    out: dict[str, Any] = {"ref": fact.ref, "display": fact.display, "status": fact.status,
                           "codes": [f"{s}|{c}" for s, c in fact.codes]}
    if fact.date_text:
        out["date"] = fact.date_text
    if not fact.present:
        out["absent"] = True
    if fact.tentative:
        out["note"] = RED_FLAG_ONLY_NOTE
    doubts = tuple(d for d in (fact.date_doubt, *fact.doubts) if d)
    if doubts:
        out["uncertain"] = list(doubts)
    if not fact.current:
        out["current"] = False
    if fact.value is not None:
        out["value"] = fact.value
    if fact.laterality:
        out["laterality"] = fact.laterality
    if fact.draft:
        out["draft"] = True
    return out
