"""The engine silences snoozed routine rules itself: no card, no PAMA rating, traced as snoozed.

A red flag is never silenced, and a snoozed rule still suppresses what it would have suppressed
(snoozing one card must not bring up the cards it stood in front of).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service import fixtures
from service.cards import PAMA_RATING_URL, render
from service.config import PROJECT_ROOT
from service.engine import evaluate
from tests.support.rules import bundled_ruleset

RULESET = bundled_ruleset()
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PATIENTS = PROJECT_ROOT / "fixtures" / "patients"
LUMBAR_MRI = {"resourceType": "ServiceRequest", "id": "mri", "status": "draft", "intent": "order",
              "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}}


def run(patient: str, *, silenced: set[str] = frozenset(), hook: str = "patient-view",
        drafts: tuple = ()):
    resources = fixtures.bundle_resources(fixtures.load_bundle(PATIENTS / f"{patient}.json", NOW))
    return evaluate(RULESET, resources, now=NOW, hook=hook, draft_orders=list(drafts),
                    silenced=silenced)


def status(evaluation, rule_id: str) -> dict:
    return next(e for e in evaluation.trace["rules"] if e["rule"] == rule_id)


def ratings(evaluation) -> list[str]:
    actions = render(evaluation, patient_id="p1").system_actions
    return [x["valueCodeableConcept"]["coding"][0]["code"]
            for a in actions for x in a["resource"]["extension"] if x["url"] == PAMA_RATING_URL]


def test_snoozed_order_guard_leaves_neither_card_nor_not_appropriate_rating() -> None:
    shown = run("spine-onset-day41", hook="order-select", drafts=(LUMBAR_MRI,))
    assert shown.rule_ids == ("early-lumbar-imaging",)
    assert ratings(shown) == ["not-appropriate"]

    snoozed = run("spine-onset-day41", hook="order-select", drafts=(LUMBAR_MRI,),
                  silenced={"early-lumbar-imaging"})
    assert snoozed.rule_ids == ()
    assert status(snoozed, "early-lumbar-imaging")["status"] == "snoozed"
    assert snoozed.pama == {}
    assert render(snoozed, patient_id="p1").body() == {"cards": []}


def test_snooze_of_another_rule_changes_nothing() -> None:
    other = run("spine-onset-day41", hook="order-select", drafts=(LUMBAR_MRI,),
                silenced={"lateral-hip-pain"})
    assert other.rule_ids == ("early-lumbar-imaging",)
    assert ratings(other) == ["not-appropriate"]


def test_snoozed_rule_still_suppresses_what_it_stood_in_front_of() -> None:
    shown = run("gtps")
    assert shown.rule_ids == ("lateral-hip-pain",)
    assert status(shown, "documentation-gap")["suppressedBy"] == "lateral-hip-pain"

    snoozed = run("gtps", silenced={"lateral-hip-pain"})
    assert snoozed.rule_ids == ()
    assert status(snoozed, "lateral-hip-pain")["status"] == "snoozed"
    assert status(snoozed, "documentation-gap")["status"] == "suppressed"


@pytest.mark.parametrize("patient", ["s08-ces-with-hip-oa", "numbness-progressing"])
def test_red_flag_is_never_silenced(patient: str) -> None:
    shown = run(patient)
    (red_flag,) = shown.rule_ids
    silenced = run(patient, silenced={red_flag})
    assert silenced.rule_ids == (red_flag,)
    assert status(silenced, red_flag)["status"] == "card"
    assert status(silenced, red_flag)["snooze"] == "not honoured: red flag"
    assert [c.decision.rule_id for c in render(silenced, patient_id="p1").cards] == [red_flag]
