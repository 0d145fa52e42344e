"""Running the test cases written beside each rule (``tests:``), as ``semgrep --test`` does.

Case data use relative date tokens (``{{now-56d}}``) rendered against a fixed reference time, so
a case means the same thing on every day it runs; ``at:`` then moves the evaluation time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service import fixtures
from service.config import DEFAULTS
from service.engine.evaluate import Evaluation, evaluate
from service.engine.model import Case
from service.engine.ruleset import CompiledRule, RuleSet
from service.yamlsource import ConfigError

REFERENCE_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class CaseResult:
    rule_id: str
    case_id: str
    name: str
    location: str
    problems: list[str] = field(default_factory=list)
    evaluation: Evaluation | None = None

    @property
    def passed(self) -> bool:
        return not self.problems


#: Far above any patient Bundle a case needs; a case cannot make the checker read without end.
MAX_FIXTURE_BYTES = 8 * 1024 * 1024


def resolve_fixture(ruleset: RuleSet, name: str) -> Path:
    """A case's fixture: a path relative to the rules' parent, the rules or the bundled
    defaults (which hold ``fixtures/patients``), read only where it really lies in the rules,
    the fixtures beside them or the defaults, and only a regular file of a bounded size.
    Whoever can write a rule file must not make ``rules test``, or the workbench in the
    server, read any file of the host, or one that never ends (``/dev/zero``)."""
    rules = ruleset.rules_dir
    outside = ValueError(f"fixture {name} is outside the rules and fixtures trees: write a "
                         f"path such as fixtures/patients/NAME.json")
    if Path(name).is_absolute():
        raise outside
    # Resolved, as the bundled defaults link to the checkout's trees in a source tree.
    roots = [root.resolve() for root in (rules, rules.parent / "fixtures", DEFAULTS / "fixtures")]
    for base in (rules.parent, rules, DEFAULTS):
        if not (base / name).exists():
            continue
        real = (base / name).resolve()
        if not any(real.is_relative_to(root) for root in roots):
            raise outside
        if not real.is_file():
            raise ValueError(f"fixture {name} is not a regular file")
        if real.stat().st_size > MAX_FIXTURE_BYTES:
            raise ValueError(f"fixture {name} is larger than {MAX_FIXTURE_BYTES // 2**20} MiB")
        return real
    raise FileNotFoundError(f"fixture {name} not found next to {rules} or in {DEFAULTS}")


def case_inputs(ruleset: RuleSet, case: Case, base_now: datetime
                ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(resources, draft orders) for ``case`` with dates rendered against ``base_now``."""
    resources: list[Mapping[str, Any]] = []
    if case.fixture:
        bundle = fixtures.load_bundle(resolve_fixture(ruleset, case.fixture), base_now)
        resources += fixtures.bundle_resources(bundle)
    resources += fixtures.render(case.resources, base_now, source=f"case {case.name!r}")
    if case.age is not None and not any(r.get("resourceType") == "Patient" for r in resources):
        resources.append(fixtures.render(
            {"resourceType": "Patient", "id": "case-patient",
             "birthDate": f"{{{{date:now-{case.age}y}}}}"}, base_now))
    drafts = fixtures.render(case.draft_orders, base_now, source=f"case {case.name!r}")
    return resources, drafts


def run_case(ruleset: RuleSet, rule: CompiledRule, case: Case,
             base_now: datetime = REFERENCE_NOW) -> CaseResult:
    """Evaluate one case; a problem is an expected rule missing, an unexpected one present, or
    data that could not be read (reported, not raised)."""
    result = CaseResult(rule.id, case.id, case.name, f"{rule.file}:{rule.line}")
    try:
        resources, drafts = case_inputs(ruleset, case, base_now)
    except (OSError, ValueError) as exc:
        result.problems.append(f"cannot read case data: {exc}")
        return result
    ev = evaluate(ruleset, resources, now=base_now + case.at, hook=case.hook,
                  draft_orders=drafts, selections=case.selections)
    result.evaluation = ev
    present = set(ev.rule_ids)
    for rid in case.expect:
        if rid not in present:
            result.problems.append(f"expected `{rid}` to fire; it did not ({_why(ev, rid)})")
    for rid in case.absent:
        if rid in present:
            result.problems.append(f"expected `{rid}` not to fire; it did")
    return result


def _why(ev: Evaluation, rule_id: str) -> str:
    entry = next((r for r in ev.trace["rules"] if r["rule"] == rule_id), None)
    if entry is None:
        return "rule not in the set"
    if entry.get("suppressedBy"):
        return f"suppressed by {entry['suppressedBy']}"
    return entry.get("status", "did not fire")


def run_all(ruleset: RuleSet, base_now: datetime = REFERENCE_NOW) -> list[CaseResult]:
    return [run_case(ruleset, rule, case, base_now) for rule, case in ruleset.cases]


def evaluation_errors(ruleset: RuleSet) -> list[ConfigError]:
    """An error at each rule whose own case could not be evaluated at all (a case that runs
    but fails its expectation is for ``rules test``). A set that raises on its cases would
    raise on patients too and answer those calls, red flags included, with an error, so it
    must never be served; every exception counts, whatever its kind."""
    errors = []
    for rule, case in ruleset.cases:
        try:
            run_case(ruleset, rule, case)
        except Exception as exc:  # whatever went wrong, the set is refused
            errors.append(ConfigError(rule.file, rule.line, 1, f"tests.{case.id}",
                                      f"evaluating case `{case.id}` failed: {type(exc).__name__}: {exc}",
                                      "the rule set compiles but cannot be evaluated; "
                                      "`spinehip rules test` shows the case"))
    return errors
