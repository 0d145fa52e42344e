"""Cards from real rule decisions; the normaliser's status, negation and robustness policy."""

from __future__ import annotations

import subprocess
import sys

from fhir.resources.R4B.servicerequest import ServiceRequest

from service.cards import render
from service.cdshooks.response import prune_empty as prune
from service.engine import RuleRegistry, evaluate, load_ruleset
from service.engine.casetests import REFERENCE_NOW, run_all, run_case
from tests.support.rules import case, edit


def _walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _result(ruleset, case_id):
    return run_case(ruleset, *case(case_id))


def test_every_case_renders_conformant_cards_with_valid_orders(ruleset):
    rule_ids = {r.id for r in ruleset.rules}
    for result in run_all(ruleset):
        body = render(result.evaluation, patient_id="p1").body()
        assert prune(body) == body or body == {"cards": []}, result.case_id
        for card in body["cards"]:
            assert len(card["summary"]) <= 139
            assert card["source"]["topic"]["code"] in rule_ids
            assert all(link["url"].startswith("https://") for link in card.get("links", []))
            assert all(r["display"] for r in card.get("overrideReasons", []))
            assert ("suggestions" in card) == ("selectionBehavior" in card)
            planned = next(d for d in result.evaluation.active
                           if d.rule_id == card["source"]["topic"]["code"])
            assert len(card.get("suggestions", [])) == len(planned.suggestions)
            for action in (a for s in card.get("suggestions", []) for a in s["actions"]):
                if action["type"] == "create":
                    sr = ServiceRequest.model_validate(action["resource"])
                    assert sr.status == "draft" and sr.subject.reference == "Patient/p1"


def _card(ruleset, case_id):
    result = _result(ruleset, case_id)
    body = render(result.evaluation, patient_id="p1").body()
    return next(c for c in body["cards"] if c["source"]["topic"]["code"] == result.rule_id)


def test_red_flag_orders_are_stat_and_preliminary_data_is_flagged(ruleset):
    result = _result(ruleset, "retention-preliminary")
    body = render(result.evaluation, patient_id="p1").body()
    [card] = body["cards"]
    resources = [a["resource"] for s in card["suggestions"] for a in s["actions"]]
    assert {r["priority"] for r in resources} == {"stat"}
    assert "preliminary or unconfirmed" in card["detail"]
    assert "Observation/retention-preliminary-retention" in card["detail"]


def test_hip_radiograph_order_carries_the_side_of_the_finding(ruleset):
    sides = {}
    for name, case_id in (("left hip pattern", "left-hip-pattern-5-months"),
                          ("right hip pattern", "right-hip-pattern")):
        card = _card(ruleset, case_id)
        xr_hip = next(a["resource"] for s in card["suggestions"] for a in s["actions"]
                      if a["resource"]["code"]["coding"][0]["code"] == "73502")
        sides[name] = [c["code"] for b in xr_hip["bodySite"] for c in b["coding"]]
    assert "7771000" in sides["left hip pattern"] and "24028007" in sides["right hip pattern"]


def test_order_select_guard_deletes_the_draft_and_rates_it_not_appropriate(ruleset):
    result = _result(ruleset, "mri-drafted-day-41")
    body = render(result.evaluation, patient_id="p1").body()
    [card] = body["cards"]
    [action] = card["suggestions"][0]["actions"]
    assert action == {"type": "delete", "description": "Remove draft order ServiceRequest/mri",
                      "resourceId": "ServiceRequest/mri"}
    [update] = body["systemActions"]
    ext = {e["url"]: e for e in update["resource"]["extension"]}
    rating = ext["http://fhir.org/argonaut/Extension/pama-rating"]["valueCodeableConcept"]
    assert rating["coding"][0]["code"] == "not-appropriate"
    assert update["resource"]["code"]["coding"][0]["code"] == "72148"


def test_shadow_rules_stay_in_the_evaluation_but_make_no_card(rules_copy):
    edit(rules_copy / "rules" / "r05-spine-pattern-mri.yaml", "    precedence: 60",
         "    mode: shadow\n    precedence: 60")
    shadow = load_ruleset(rules_copy)
    rule, spec = case("sciatica-8-weeks")
    result = run_case(shadow, next(r for r in shadow.rules if r.id == rule.id), spec)
    assert [d.rule_id for d in result.evaluation.shadow] == ["spine-pattern-mri"]
    assert render(result.evaluation, patient_id="p1").body() == {"cards": []}


def test_unreadable_resources_are_skipped_and_reported_not_fatal(ruleset):
    """A resource that cannot be read is counted and skipped; a red flag whose date or status
    cannot be read is not such a resource: it is kept, uncertain (clinical reference §2.0.1)."""
    resources = [
        "not a resource",
        {"resourceType": "Observation", "id": "bad-value", "status": "final",
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "267064002"}]},
         "valueInteger": "three"},
        {"resourceType": "Observation", "id": "bad-date", "status": "final",
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "267064002"}]},
         "effectiveDateTime": "yesterday"},
        {"resourceType": "Observation", "id": "no-status",
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "267064002"}]}},
        {"resourceType": "Observation", "id": "eie", "status": "entered-in-error",
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "267064002"}]}},
    ]
    ev = evaluate(ruleset, resources, now=REFERENCE_NOW)
    skipped = {s["ref"] for s in ev.trace["input"]["skipped"]}
    assert skipped == {"?", "Observation/bad-value"}
    assert ev.data_quality["excluded"] == {"unreadable": 2}
    assert ev.trace["input"]["ignored"] == [{"ref": "Observation/eie",
                                             "reason": "status entered-in-error"}]
    [decision] = ev.decisions
    assert decision.rule_id == "cauda-equina"
    assert {e.ref for e in decision.evidence} == {"Observation/bad-date", "Observation/no-status"}
    assert evaluate(ruleset, resources[:2] + resources[4:], now=REFERENCE_NOW).decisions == ()


def test_registry_keeps_the_last_good_set_when_a_reload_is_invalid(rules_copy):
    registry = RuleRegistry(rules_copy)
    good = registry.current
    edit(rules_copy / "orders.yaml", 'code: "72148"', 'code: "7214"')
    assert registry.check_for_changes() is False
    assert registry.current is good
    [error] = registry.last_error
    assert "bad cpt code `7214`" in error.message and error.file.endswith("orders.yaml")
    edit(rules_copy / "orders.yaml", 'code: "7214"', 'code: "72148"')
    assert registry.reload() is True and registry.last_error is None


def test_engine_package_imports_no_web_framework():
    code = ("import sys, service.engine, service.cards; "
            "print(sorted(m for m in ('flask', 'requests', 'werkzeug') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
