"""Turning a hook answer into the audit record, and dropping snoozed cards before answering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from conftest import DATA, feedback_item

from service.store import Store
from service.store.audit import audit_record, card_topic, drop_snoozed_cards


def body() -> dict:
    return json.loads((DATA / "answer-body.json").read_text())


def decision(rule_id: str, mode: str, indicator: str = "info") -> SimpleNamespace:
    return SimpleNamespace(
        rule_id=rule_id,
        mode=mode,
        rule=SimpleNamespace(indicator=indicator),
        summary=f"{rule_id} summary",
        evidence=(SimpleNamespace(ref=f"Observation/{rule_id}"),),
        sources=(SimpleNamespace(title="ACR Appropriateness Criteria"),),
    )


EVALUATION = SimpleNamespace(
    ruleset_version="2026.11.0",
    decisions=(
        decision("cauda-equina", "active", "critical"),
        decision("hip-pattern-radiographs", "active"),
        decision("spine-pattern-mri", "shadow"),
    ),
)


def record(answer: dict):
    return audit_record(
        service_id="spinehip-order-select",
        hook="order-select",
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        patient_id="patient-ces-1",
        body=answer,
        evaluation=EVALUATION,
        evaluation_ms=9.5,
        user_id="Practitioner/example",
        tenant="clinic-north",
    )


def test_every_returned_card_and_every_shadow_decision_is_recorded() -> None:
    decisions = record(body()).decisions
    assert [(d.rule_id, d.mode) for d in decisions] == [
        ("cauda-equina", "active"),
        ("hip-pattern-radiographs", "active"),
        ("spine-pattern-mri", "shadow"),
    ]
    ces = decisions[0]
    assert ces.card_uuid == "0b6f6a52-5f0e-4d0c-9d8e-3f4f8e2c1a01"
    assert ces.suggestion_uuids == (
        "5d3c1b0e-2a44-4b7e-8e0a-7c1f3e9b2d11",
        "9e2f4a61-7b3c-4d5e-8f1a-2b6c9d0e3f12",
    )
    assert (ces.indicator, ces.evidence, ces.sources) == (
        "critical",
        ("Observation/cauda-equina",),
        ("ACR Appropriateness Criteria",),
    )
    assert decisions[2].card_uuid is None
    assert decisions[2].evidence == ("Observation/spine-pattern-mri",)


def test_only_cards_actually_returned_are_recorded_as_active() -> None:
    answer = drop_snoozed_cards(body(), {"cauda-equina"})
    assert [d.rule_id for d in record(answer).decisions if d.mode == "active"] == [
        "hip-pattern-radiographs"
    ]


def test_snoozed_rules_cards_are_dropped_and_others_kept() -> None:
    original = body()
    answer = drop_snoozed_cards(original, {"cauda-equina", "lateral-hip-pain"})
    assert [card_topic(c) for c in answer["cards"]] == ["hip-pattern-radiographs"]
    assert len(original["cards"]) == 2, "the original body is left untouched"


def test_recorded_answer_links_feedback_to_the_snoozed_rule(store: Store) -> None:
    store.record_invocation(record(body()))
    store.record_feedback("svc", [feedback_item("snoozed")])
    key = store.patient_key("patient-ces-1")
    day_after = datetime(2026, 11, 21, tzinfo=UTC)
    assert store.snoozed_rules(key, day_after) == {"hip-pattern-radiographs"}
