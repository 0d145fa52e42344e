"""Evaluation policy from the clinical reference (§2.0, §2.0.1, R8/R9) on the bundled rules.

Each case changes one thing in a patient record and checks both sides: the record that should
count does, and the changed one does not.
"""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from service import fixtures
from service.config import DEFAULTS
from service.engine import evaluate, load_ruleset
from service.engine.casetests import REFERENCE_NOW, case_inputs
from tests.support.rules import case, edit


def _patient(name: str) -> list[dict]:
    bundle = fixtures.load_bundle(DEFAULTS / "fixtures" / "patients" / f"{name}.json",
                                  REFERENCE_NOW)
    return [entry["resource"] for entry in bundle["entry"]]


def _resource(resources: list[dict], resource_id: str) -> dict:
    return next(r for r in resources if r.get("id") == resource_id)


def _status(evaluation, rule_id: str) -> str:
    return next(e["status"] for e in evaluation.trace["rules"] if e["rule"] == rule_id)


def _component_refs(evaluation, score: str) -> set[str]:
    return {ref for part in evaluation.trace["derived"][score]["components"]
            for ref in part["matched"]}


def _relief(evaluation) -> float | None:
    return evaluation.trace["derived"]["hip_injection_relief"]["percent"]


def test_pre_injection_pain_below_four_gives_no_relief_figure(ruleset):
    """R8: relief is computed only when the pre-injection score is at least 4/10."""
    resources = _patient("relief-50-scores")
    _resource(resources, "relief-50-scores-pain-post")["valueQuantity"]["value"] = 1
    high = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert _relief(high) == 87.5
    assert "injection-confirms-hip" in high.rule_ids

    _resource(resources, "relief-50-scores-pain-pre")["valueQuantity"]["value"] = 3
    low = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert _relief(low) is None
    assert not {"injection-confirms-hip", "injection-points-to-spine"} & set(low.rule_ids)


def test_injection_with_no_side_recorded_counts_for_either_hip(ruleset):
    """The injection side must match the symptomatic side (§2.0): only a known other side
    excludes it; an injection whose side was not recorded is not of the other hip."""
    resources = _patient("injection-wrong-side")
    other_side = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert _relief(other_side) is None
    assert "injection-confirms-hip" not in other_side.rule_ids

    injection = _resource(resources, "injection-wrong-side-injection")
    injection["bodySite"] = injection["bodySite"][:1]  # hip region, no laterality
    unsided = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert _relief(unsided) == 75.0
    assert "injection-confirms-hip" in unsided.rule_ids


def test_undated_pattern_feature_does_not_count_for_a_routine_score(ruleset):
    """An uncertain date counts only for red flags (§2.0.1): a pattern feature with no date
    is outside its 90-day window."""
    resources = _patient("s01-sciatica-8-weeks")
    ref = "Observation/s01-sciatica-8-weeks-hip-rom"
    dated = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert ref in _component_refs(dated, "spine")

    del _resource(resources, "s01-sciatica-8-weeks-hip-rom")["effectiveDateTime"]
    undated = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert ref not in _component_refs(undated, "spine")
    assert undated.trace["derived"]["spine"]["score"] == dated.trace["derived"]["spine"]["score"] - 2


def test_provisional_condition_counts_for_red_flags_only(ruleset):
    """§2.0: an unconfirmed, provisional or differential Condition feeds no pattern score."""
    resources = _patient("s01-sciatica-8-weeks")
    ref = "Condition/s01-sciatica-8-weeks-sciatica"
    assert ref in _component_refs(evaluate(ruleset, resources, now=REFERENCE_NOW), "spine")

    sciatica = _resource(resources, "s01-sciatica-8-weeks-sciatica")
    sciatica["verificationStatus"]["coding"][0]["code"] = "provisional"
    assert ref not in _component_refs(evaluate(ruleset, resources, now=REFERENCE_NOW), "spine")


def test_numbness_is_saddle_anaesthesia_only_at_a_perineal_site(ruleset):
    """VS-CES: numbness with a perineal body site is a CES sign (R1); numbness of the leg is not."""
    numbness = {
        "resourceType": "Observation", "id": "numb", "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44077006"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": (REFERENCE_NOW.date()).isoformat(),
        "bodySite": {"coding": [{"system": "http://spinehip-cds.org/fhir/CodeSystem/finding",
                                 "code": "perineal-region"}]},
    }
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
    saddle = evaluate(ruleset, [patient, numbness], now=REFERENCE_NOW)
    assert saddle.rule_ids == ("cauda-equina",)

    leg = copy.deepcopy(numbness)
    leg["bodySite"] = {"coding": [{"system": "http://snomed.info/sct", "code": "61685007"}]}
    assert "cauda-equina" not in evaluate(ruleset, [patient, leg], now=REFERENCE_NOW).rule_ids


def test_temperature_without_a_value_is_not_a_fever(ruleset):
    """§2.0.1: body temperature >= 38.0 °C is fever; a temperature with no value says nothing."""
    resources = _patient("messy-fever-measured-38-4")
    assert "serious-pathology" in evaluate(ruleset, resources, now=REFERENCE_NOW).rule_ids

    del _resource(resources, "messy-fever-measured-38-4-temperature")["valueQuantity"]
    assert "serious-pathology" not in evaluate(ruleset, resources, now=REFERENCE_NOW).rule_ids


def test_a_lumbar_imaging_order_on_record_is_not_a_draft(ruleset):
    """R4 looks at `context.draftOrders` only: the same ServiceRequest already in the record is
    not the order being placed."""
    rule, spec = case("mri-drafted-day-41")
    resources, drafts = case_inputs(ruleset, spec, REFERENCE_NOW)
    assert drafts
    as_draft = evaluate(ruleset, resources, now=REFERENCE_NOW + spec.at, hook=spec.hook,
                        draft_orders=drafts)
    assert _status(as_draft, rule.id) == "card"

    as_record = evaluate(ruleset, [*resources, *copy.deepcopy(drafts)],
                         now=REFERENCE_NOW + spec.at, hook=spec.hook)
    assert _status(as_record, rule.id) == "did not fire"


def test_a_disabled_rule_is_traced_and_makes_no_card(rules_copy):
    resources = _patient("retention-preliminary")
    enabled = evaluate(load_ruleset(rules_copy), resources, now=REFERENCE_NOW)
    assert _status(enabled, "cauda-equina") == "card"

    edit(rules_copy / "rules" / "r01-cauda-equina.yaml", "  - id: cauda-equina\n",
         "  - id: cauda-equina\n    enabled: false\n")
    disabled = evaluate(load_ruleset(rules_copy), resources, now=REFERENCE_NOW)
    assert _status(disabled, "cauda-equina") == "disabled"
    assert "cauda-equina" not in disabled.rule_ids


def test_evaluation_time_must_carry_a_time_zone(ruleset):
    resources = _patient("retention-preliminary")
    assert evaluate(ruleset, resources, now=REFERENCE_NOW).rule_ids == ("cauda-equina",)
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(ruleset, resources, now=datetime(2026, 6, 1, 12, 0))


@pytest.mark.parametrize("post", [-2, 11, 100])
def test_a_pain_score_off_the_0_to_10_scale_gives_no_relief_figure(ruleset, post):
    """R8/R9 read the 0-10 pain scale: a post-injection score of -2 is a slip, not 125 % relief."""
    resources = _patient("relief-50-scores")
    _resource(resources, "relief-50-scores-pain-post")["valueQuantity"]["value"] = post
    off_scale = evaluate(ruleset, resources, now=REFERENCE_NOW)
    assert not {"injection-confirms-hip", "injection-points-to-spine"} & set(off_scale.rule_ids)

    _resource(resources, "relief-50-scores-pain-post")["valueQuantity"]["value"] = 0
    assert _relief(evaluate(ruleset, resources, now=REFERENCE_NOW)) == 100.0
