"""Named parameters and suppression by tier, as an admin editing the rule files meets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.cards import card
from service.config import PROJECT_ROOT
from service.engine import evaluate, load_ruleset
from service.fixtures import bundle_resources, load_bundle
from service.yamlsource import ConfigFileError
from tests.support.rules import edit

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PATIENTS = PROJECT_ROOT / "fixtures" / "patients"
MRI_DRAFT = [{"resourceType": "ServiceRequest", "id": "mri", "status": "draft", "intent": "order",
              "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}}]


def _errors(rules_dir):
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_dir)
    return info.value.errors


def _day41(ruleset, hook="order-select"):
    resources = bundle_resources(load_bundle(PATIENTS / "spine-onset-day41.json", NOW))
    drafts = MRI_DRAFT if hook != "patient-view" else ()
    return evaluate(ruleset, resources, now=NOW, hook=hook, draft_orders=drafts)


def _texts(evaluation) -> str:
    return "\n".join(f"{d.rule.title}\n{d.summary}\n{d.detail}" for d in evaluation.decisions)


def test_bundled_cards_state_the_six_week_window():
    ev = _day41(load_ruleset(PROJECT_ROOT / "rules"))
    [guard] = [d for d in ev.decisions if d.rule_id == "early-lumbar-imaging"]
    assert guard.summary == "Lumbar imaging in the first 6 weeks without red flags is not recommended."
    assert guard.rule.title == "R4: lumbar imaging ordered in the first 6 weeks without red flags"


def test_moving_the_window_to_four_weeks_moves_every_rule_and_card(rules_copy):
    edit(rules_copy / "ruleset.yaml", "    value: 6w\n  hip_pattern_duration:",
         "    value: 4w\n  hip_pattern_duration:")
    ev = _day41(load_ruleset(rules_copy))
    # Day 41 is past 4 weeks: the order-time guard is quiet and the spine-pattern card shows.
    assert "early-lumbar-imaging" not in ev.rule_ids
    [mri] = [d for d in ev.decisions if d.rule_id == "spine-pattern-mri"]
    assert mri.summary.startswith("Spine-pattern pain ≥4 weeks: ")
    assert "at least 4 weeks" in " ".join(mri.detail.split())
    assert "6 week" not in _texts(ev) and "6-week" not in _texts(ev)


def test_a_window_in_days_reads_in_days_everywhere(rules_copy):
    edit(rules_copy / "ruleset.yaml", "    value: 6w\n  hip_pattern_duration:",
         "    value: 60d\n  hip_pattern_duration:")
    ev = _day41(load_ruleset(rules_copy))
    [guard] = [d for d in ev.decisions if d.rule_id == "early-lumbar-imaging"]
    assert guard.summary == "Lumbar imaging in the first 60 days without red flags is not recommended."
    assert guard.rule.title == "R4: lumbar imaging ordered in the first 60 days without red flags"
    assert "6 week" not in _texts(ev)


def test_a_parameter_used_with_two_meanings_is_rejected(rules_copy):
    r06 = rules_copy / "rules" / "r06-hip-pattern-radiographs.yaml"
    edit(r06, "ge: hip_pattern_duration}", "ge: imaging_wait}")
    errors = _errors(rules_copy)
    conflict = [e for e in errors if "conflicting meanings" in e.message]
    assert len(conflict) == 1 and conflict[0].file in {str(r06), str(
        rules_copy / "rules" / "r05-spine-pattern-mri.yaml"), str(
        rules_copy / "rules" / "r04-early-lumbar-imaging.yaml")}
    assert "hip_pain_duration" in conflict[0].message and "back_pain_duration" in conflict[0].message


def test_a_parameter_nothing_uses_is_reported(rules_copy):
    edit(rules_copy / "ruleset.yaml", "  relief_threshold:", "  unused_window:\n"
         "    title: A window no rule names\n    value: 3d\n  relief_threshold:")
    [error] = _errors(rules_copy)
    assert error.message == "parameter `unused_window` is not used"
    assert error.file == str(rules_copy / "ruleset.yaml") and error.line > 1


def test_one_meaning_with_opposite_comparisons_is_fine():
    ruleset = load_ruleset(PROJECT_ROOT / "rules")  # R4 `lt: imaging_wait`, R5 `ge: imaging_wait`
    assert ruleset.parameters["imaging_wait"].value.days == 42


def test_unknown_parameter_is_located_with_a_hint(rules_copy):
    path = rules_copy / "rules" / "r04-early-lumbar-imaging.yaml"
    edit(path, "lt: imaging_wait}", "lt: imaging_wiat}")
    [error] = _errors(rules_copy)
    assert error.file == str(path) and error.message == "unknown parameter `imaging_wiat`"
    assert "did you mean `imaging_wait`" in error.hint


def test_a_duration_parameter_in_a_percent_threshold_is_rejected(rules_copy):
    edit(rules_copy / "rules" / "r08-injection-confirms-hip.yaml", "gt: relief_threshold}",
         "gt: imaging_wait}")
    errors = _errors(rules_copy)
    assert any("`imaging_wait` does not fit here" in e.message for e in errors)


def test_a_finding_window_names_a_parameter(rules_copy):
    edit(rules_copy / "ruleset.yaml", "    value: 14d\n", "    value: 20d\n")
    ruleset = load_ruleset(rules_copy)
    assert ruleset.findings["ces_sign"].spec.within.days == 20
    assert ruleset.findings["neuro_deficit"].spec.title == "New neurological deficit of the leg (20 days)"


NEW_ROUTINE_RULE = """\
rules:
  - id: hip-oa-education
    title: "Hip osteoarthritis: education and exercise"
    precedence: 80
    when: hip_oa_condition
    indicator: info
    summary: "Hip osteoarthritis on the problem list: offer education and exercise therapy."
    detail: Exercise therapy and weight management are first-line care.
    override_reasons: [clinical-judgement]
    cite: [ACR-CHP-2016]
"""


def test_a_new_routine_rule_is_suppressed_by_cauda_equina_without_editing_any_list(rules_copy):
    (rules_copy / "rules" / "r14-hip-oa-education.yaml").write_text(NEW_ROUTINE_RULE)
    ruleset = load_ruleset(rules_copy)
    ces = bundle_resources(load_bundle(PATIENTS / "s08-ces-with-hip-oa.json", NOW))
    ev = evaluate(ruleset, ces, now=NOW)
    assert "cauda-equina" in ev.rule_ids and "hip-oa-education" not in ev.rule_ids
    [entry] = [r for r in ev.trace["rules"] if r["rule"] == "hip-oa-education"]
    assert entry["status"] == "suppressed" and entry["suppressedBy"] == "cauda-equina"
    # Its twin: hip OA without a red flag gets the new card.
    mixed = bundle_resources(load_bundle(PATIENTS / "s04-mixed-hip-oa-stenosis.json", NOW))
    assert "hip-oa-education" in evaluate(ruleset, mixed, now=NOW).rule_ids


def test_serious_pathology_hides_only_what_the_reference_names():
    rules = {r.id: r for r in load_ruleset(PROJECT_ROOT / "rules").rules}
    assert rules["serious-pathology"].spec.suppresses == ["early-lumbar-imaging", "documentation-gap"]
    routine = {rid for rid, r in rules.items() if not r.spec.red_flag}
    assert set(rules["cauda-equina"].spec.suppresses) == routine | {"progressive-neuro-deficit"}
    assert set(rules["progressive-neuro-deficit"].spec.suppresses) == routine


def test_a_routine_rule_cannot_claim_the_tier_or_suppress_a_red_flag(rules_copy):
    (rules_copy / "rules" / "r14-hip-oa-education.yaml").write_text(
        NEW_ROUTINE_RULE.replace("    precedence: 80\n", "    precedence: 80\n    suppresses_routine: true\n"
                                 "    suppresses: [cauda-equina]\n"))
    messages = [e.message for e in _errors(rules_copy)]
    assert "only a red-flag rule suppresses the routine tier" in messages
    assert "a routine rule cannot suppress the red-flag rule `cauda-equina`" in messages


def test_listing_a_routine_rule_under_a_red_flag_is_reported_as_redundant(rules_copy):
    edit(rules_copy / "rules" / "r01-cauda-equina.yaml", "suppresses: [progressive-neuro-deficit]",
         "suppresses: [progressive-neuro-deficit, documentation-gap]")
    [error] = _errors(rules_copy)
    assert "already suppressed by this red-flag rule" in error.message


def _relief_patient(post_hours_after: float) -> list[dict]:
    """A diagnostic hip injection 10 h ago: pain 8 just before it, 1 ``post_hours_after`` it."""
    resources = bundle_resources(load_bundle(PATIENTS / "relief-50-scores.json", NOW))
    by_id = {r.get("id"): r for r in resources}
    injected = NOW - timedelta(hours=10)
    by_id["relief-50-scores-injection"]["performedDateTime"] = injected.isoformat()
    by_id["relief-50-scores-pain-pre"]["effectiveDateTime"] = (
        injected - timedelta(minutes=30)).isoformat()
    post = by_id["relief-50-scores-pain-post"]
    post["effectiveDateTime"] = (injected + timedelta(hours=post_hours_after)).isoformat()
    post["valueQuantity"]["value"] = 1
    return resources


def _injection_card_texts(ruleset) -> str:
    """The R7 card and the notes of the injection orders it suggests, as the EHR gets them."""
    mixed = bundle_resources(load_bundle(PATIENTS / "s04-mixed-hip-oa-stenosis.json", NOW))
    [decision] = [d for d in evaluate(ruleset, mixed, now=NOW).decisions
                  if d.rule_id == "diagnostic-hip-injection"]
    shown = card(decision, "s04-mixed-hip-oa-stenosis")
    notes = [a["resource"]["note"][0]["text"] for s in shown["suggestions"] for a in s["actions"]]
    assert len(notes) == 2
    return " ".join(" ".join([shown["detail"], *notes]).split())


def test_bundled_injection_cards_state_the_pain_score_windows():
    texts = _injection_card_texts(load_ruleset(PROJECT_ROOT / "rules"))
    assert texts.count("15 minutes to 6 hours after") == 3
    assert texts.count("in the 24 hours before") == 3


def test_widening_the_after_injection_window_moves_cards_and_evaluation(rules_copy):
    late = _relief_patient(post_hours_after=7)
    bundled = load_ruleset(PROJECT_ROOT / "rules")
    # 7 h after is outside the bundled window: no relief figure, no R8 card.
    assert evaluate(bundled, late, now=NOW).trace["derived"]["hip_injection_relief"]["percent"] is None
    assert "injection-confirms-hip" in evaluate(bundled, _relief_patient(5), now=NOW).rule_ids

    edit(rules_copy / "ruleset.yaml", "    value: 6h\n", "    value: 8h\n")
    widened = load_ruleset(rules_copy)
    ev = evaluate(widened, late, now=NOW)
    assert ev.trace["derived"]["hip_injection_relief"]["percent"] == 87.5
    assert "injection-confirms-hip" in ev.rule_ids
    texts = _injection_card_texts(widened)
    assert texts.count("15 minutes to 8 hours after") == 3 and "6 hours" not in texts


def test_a_relief_window_reused_as_a_finding_window_is_a_conflict(rules_copy):
    findings = rules_copy / "findings.yaml"
    edit(findings, "    within: record_window\n  hip_imaging_12mo:",
         "    within: relief_after_end\n  hip_imaging_12mo:")
    errors = _errors(rules_copy)
    conflict = [e for e in errors if "conflicting meanings" in e.message]
    assert len(conflict) == 1 and "`relief_after_end`" in conflict[0].message
    assert conflict[0].file == str(findings)


def test_a_number_parameter_in_a_relief_window_is_rejected(rules_copy):
    edit(rules_copy / "findings.yaml", "    after_max: relief_after_end\n",
         "    after_max: relief_threshold\n")
    errors = _errors(rules_copy)
    assert any("`relief_threshold` does not fit here" in e.message for e in errors)


def _descriptions(ruleset) -> dict[str, str]:
    return {r.id: " ".join((r.spec.description or "").split()) for r in ruleset.rules}


def test_the_look_back_window_in_rule_descriptions_is_the_one_in_force(rules_copy):
    bundled = _descriptions(load_ruleset(PROJECT_ROOT / "rules"))
    assert "no lumbar MRI within 1 year" in bundled["spine-pattern-mri"]
    assert "no hip or pelvis imaging within 1 year" in bundled["hip-pattern-radiographs"]
    edit(rules_copy / "ruleset.yaml", "    value: 1y\n", "    value: 2y\n")
    moved = _descriptions(load_ruleset(rules_copy))
    assert "no lumbar MRI within 2 years" in moved["spine-pattern-mri"]
    assert "no hip or pelvis imaging within 2 years" in moved["hip-pattern-radiographs"]
    assert not any("12 months" in text or "1 year" in text for text in moved.values())


def _borderline_card(ruleset) -> str:
    resources = bundle_resources(load_bundle(PATIENTS / "relief-50-scores.json", NOW))
    [decision] = [d for d in evaluate(ruleset, resources, now=NOW).decisions
                  if d.rule_id == "injection-points-to-spine"]
    return " ".join(decision.detail.split())


def test_the_borderline_relief_band_on_the_r9_card_is_the_one_in_force(rules_copy):
    assert "between 40% and 60% are borderline" in _borderline_card(load_ruleset(PROJECT_ROOT / "rules"))
    edit(rules_copy / "ruleset.yaml", "    value: 40\n", "    value: 35\n")
    edit(rules_copy / "ruleset.yaml", "    value: 60\n", "    value: 65\n")
    card_text = _borderline_card(load_ruleset(rules_copy))
    assert "between 35% and 65% are borderline" in card_text and "40%" not in card_text


# (file, what it had, a value that makes no sense there, its valid neighbour, the error says)
NONSENSE = {
    "negative-wait": ("ruleset.yaml", "    value: 6w", "    value: -6w", "    value: 1w",
                      "longer than zero"),
    "zero-window": ("ruleset.yaml", "    value: 14d", "    value: 0d", "    value: 1d",
                    "longer than zero"),
    "not-a-number": ("ruleset.yaml", "    value: 50", "    value: .nan", "    value: 0",
                     "finite"),
    "negative-finding-window": ("findings.yaml", "within: neuro_window", "within: -14d",
                                "within: 14d", "longer than zero"),
    "negative-threshold": ("rules/r05-spine-pattern-mri.yaml", "ge: imaging_wait}", "ge: -42d}",
                           "ge: 42d}", "longer than zero"),
    "relief-over-100": ("rules/r08-injection-confirms-hip.yaml", "gt: relief_threshold}",
                        "gt: 150}", "gt: 100}", "from 0 to 100"),
    "pain-score-over-10": ("ruleset.yaml", "    value: 4\n", "    value: 11\n", "    value: 10\n",
                           "less than or equal to 10"),
    "window-after-ends-first": ("ruleset.yaml", "    value: 6h", "    value: 10m", "    value: 16m",
                                "must be later"),
}


@pytest.mark.parametrize("case", sorted(NONSENSE))
def test_a_value_that_makes_no_sense_for_its_kind_is_one_located_error(rules_copy, case):
    relative, old, bad, _, says = NONSENSE[case]
    edit(rules_copy / relative, old, bad)
    [error] = _errors(rules_copy)
    assert says in error.message
    assert error.line > 1


@pytest.mark.parametrize("case", sorted(NONSENSE))
def test_the_valid_neighbour_of_a_nonsense_value_loads(rules_copy, case):
    relative, old, _, good, _ = NONSENSE[case]
    edit(rules_copy / relative, old, good)
    assert load_ruleset(rules_copy).name == "spine-hip"


def test_a_relief_parameter_out_of_range_is_named_at_each_threshold(rules_copy):
    edit(rules_copy / "ruleset.yaml", "    value: 50", "    value: 150")
    errors = _errors(rules_copy)
    assert {e.file.rsplit("/", 1)[1] for e in errors} == {"r08-injection-confirms-hip.yaml",
                                                          "r09-injection-points-to-spine.yaml"}
    assert all("parameter `relief_threshold` (150)" in e.message for e in errors)
