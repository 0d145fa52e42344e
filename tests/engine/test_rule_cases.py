"""Every test case written beside a rule in rules/ runs as one pytest case."""

from __future__ import annotations

import pytest

from service.config import PROJECT_ROOT
from service.engine import load_ruleset
from service.engine.casetests import run_case

RULESET = load_ruleset(PROJECT_ROOT / "rules")


@pytest.mark.parametrize(
    ("rule", "index", "case"),
    RULESET.cases,
    ids=[f"{rule.id}[{i}]-{case.name}" for rule, i, case in RULESET.cases],
)
def test_rule_case(rule, index, case):
    result = run_case(RULESET, rule, index, case)
    assert result.passed, "\n".join(result.problems)


def test_every_rule_has_cases_that_make_it_fire_and_not_fire():
    for rule in RULESET.rules:
        cases = [c for r, _, c in RULESET.cases if r.id == rule.id]
        assert any(rule.id in c.expect for c in cases), f"{rule.id} has no firing case"
        assert any(rule.id in c.absent for c in cases), f"{rule.id} has no non-firing case"
