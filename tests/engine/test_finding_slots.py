"""A key that takes a finding takes one of the kind it reads: a draft order where a draft is
removed or rated, a record of the right resource where a procedure, a pain score or an onset is
read. The wrong kind passed rules check and then matched nothing, or the wrong records: a card
offered to delete a completed MRI report, and every PAMA rating vanished."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.engine import load_ruleset
from service.yamlsource import ConfigFileError
from tests.support.rules import edit

R04 = Path("rules") / "r04-early-lumbar-imaging.yaml"
R01 = Path("rules") / "r01-cauda-equina.yaml"
MAIN, FINDINGS = Path("ruleset.yaml"), Path("findings.yaml")
DELETE = "{delete_drafts: draft_lumbar_imaging,"
PAMA = "imaging_drafts: draft_imaging_order"
PROCEDURE, PAIN = "procedure: hip_injection_12mo", "pain_score: pain_score"
REPORTED = "reported: percent_relief_reported"
ONSET = "findings: [low_back_pain_condition, radicular_condition, lumbar_structural_condition]"
SIDE = "side_of: [hip_pain_condition,"

# file, text, the wrong kind written there, what the error says the key takes
WRONG = {
    "delete-a-record": (R04, DELETE, "{delete_drafts: lumbar_mri_12mo,", "the draft orders"),
    "pama-rates-a-record": (MAIN, PAMA, "imaging_drafts: lumbar_mri_12mo", "the draft orders"),
    "relief-after-a-draft": (FINDINGS, PROCEDURE, "procedure: draft_imaging_order", "the patient record"),
    "relief-after-a-condition": (FINDINGS, PROCEDURE, "procedure: hip_oa_condition", "Procedure"),
    "pain-score-a-condition": (FINDINGS, PAIN, "pain_score: hip_oa_condition", "Observation"),
    "reported-a-procedure": (FINDINGS, REPORTED, "reported: hip_injection_12mo", "Observation"),
    "onset-of-a-draft": (FINDINGS, ONSET, "findings: [draft_lumbar_imaging]", "the patient record"),
    "side-of-a-draft": (FINDINGS, SIDE, "side_of: [draft_imaging_order,", "the patient record"),
}

# The same keys given another finding of the right kind: taken.
RIGHT = {
    "delete-another-draft": (R04, DELETE, "{delete_drafts: draft_imaging_order,"),
    "pama-rates-lumbar-drafts": (MAIN, PAMA, "imaging_drafts: draft_lumbar_imaging"),
    "pain-score-reported-relief": (FINDINGS, PAIN, "pain_score: percent_relief_reported"),
    "onset-of-one-condition": (FINDINGS, ONSET, "findings: [low_back_pain_condition]"),
    "side-of-one-condition": (FINDINGS, SIDE, "side_of: [hip_oa_condition,"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_finding_of_the_wrong_kind_is_an_error_at_the_key(rules_copy, case):
    relative, old, wrong, takes = WRONG[case]
    edit(rules_copy / relative, old, wrong)
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_copy)
    [error] = info.value.errors
    assert error.file == str(rules_copy / relative)
    assert takes in error.message, error


@pytest.mark.parametrize("case", sorted(RIGHT))
def test_a_finding_of_the_right_kind_is_taken(rules_copy, case):
    relative, old, right = RIGHT[case]
    edit(rules_copy / relative, old, right)
    assert load_ruleset(rules_copy).name == "spine-hip"


SUGGEST = "    suggest:\n"
DELETE_SUGGESTION = SUGGEST + "      - {delete_drafts: draft_imaging_order, label: Remove the draft order}\n"
ADVICE = {"rates-not-appropriate": ("    pama_rating: appropriate\n", "    pama_rating: not-appropriate\n"),
          "suggests-removing-a-draft": (SUGGEST, DELETE_SUGGESTION)}


@pytest.mark.parametrize("advice", sorted(ADVICE))
def test_a_red_flag_rule_advising_against_a_draft_is_refused(rules_copy, advice):
    """Such a card is withheld whenever red-flag evidence is recorded (§2.0.1): the
    cauda-equina rule would never have shown its card."""
    edit(rules_copy / R01, *ADVICE[advice])
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_copy)
    [error] = info.value.errors
    assert error.file == str(rules_copy / R01) and "red-flag rule" in error.message, error


def test_a_routine_rule_may_suggest_removing_a_draft(rules_copy):
    edit(rules_copy / "rules" / "r05-spine-pattern-mri.yaml", SUGGEST, DELETE_SUGGESTION)
    [rule] = [r for r in load_ruleset(rules_copy).rules if r.spec.id == "spine-pattern-mri"]
    assert [s.spec.delete_drafts for s in rule.suggestions if s.spec.delete_drafts] == ["draft_imaging_order"]
