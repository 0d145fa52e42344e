"""Every test case written beside a rule in rules/ runs as one pytest case, named by its id."""

from __future__ import annotations

import pytest

from service.engine.casetests import run_case
from tests.support.rules import case, case_ids


@pytest.mark.parametrize("case_id", case_ids())
def test_rule_case(ruleset, case_id):
    rule, spec = case(case_id)
    result = run_case(ruleset, rule, spec)
    assert result.passed, f"{spec.name}:\n" + "\n".join(result.problems)


def test_every_rule_has_cases_that_make_it_fire_and_not_fire(ruleset):
    for rule in ruleset.rules:
        cases = [c for r, c in ruleset.cases if r.id == rule.id]
        assert any(rule.id in c.expect for c in cases), f"{rule.id} has no firing case"
        assert any(rule.id in c.absent for c in cases), f"{rule.id} has no non-firing case"
