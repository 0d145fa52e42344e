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


@pytest.mark.parametrize("token", ["{{now-99999999999999999999d}}", "{{now+8000y}}", "{{now-3months}}"])
def test_a_case_whose_dates_cannot_be_rendered_fails_naming_the_token(rules_copy, token):
    """As a missing fixture does: the set still loads, and `rules test` names the case's problem."""
    from service.engine import load_ruleset
    from service.engine.casetests import run_all
    from tests.support.rules import edit

    edit(rules_copy / "rules" / "r01-cauda-equina.yaml", 'effectiveDateTime: "{{now-2d}}"',
         f'effectiveDateTime: "{token}"')
    results = {r.case_id: r for r in run_all(load_ruleset(rules_copy))}
    assert not results["ces-no-birth-date"].passed
    assert any(token in p and "cannot read case data" in p for p in results["ces-no-birth-date"].problems)
    assert all(r.passed for case_id, r in results.items() if case_id != "ces-no-birth-date")
