"""The hook path's audit: built from the decisions the cards were rendered from, written before
the answer leaves, with snoozed rules left out by the engine rather than cut from card JSON."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import fixtures
from service.cdshooks.request import parse_hook_request
from service.cdshooks.services import load_services
from service.cdshooks.sources import NoSource
from service.config import PROJECT_ROOT
from service.pipeline import HookAnswer, answer_hook
from service.store import Store
from service.store.schema import Decision, Invocation
from tests.support.rules import bundled_ruleset
from tests.support.store_records import feedback_item

RULESET = bundled_ruleset()
SERVICES = {s.hook: s for s in load_services(PROJECT_ROOT / "hooks")}
NOW = datetime.now(UTC)


def answer(name: str, store: Store | None, ruleset=RULESET, tenant: str | None = None) -> HookAnswer:
    body = fixtures.load_request(PROJECT_ROOT / "fixtures" / "requests" / f"{name}.json", NOW)
    service = SERVICES[body["hook"]]
    request = parse_hook_request(body, service)
    return answer_hook(service, request, ruleset=ruleset, now=NOW, source=NoSource(),
                       store=store, tenant=tenant)


def audited(store: Store) -> list[tuple[Invocation, list[Decision]]]:
    with Session(store.engine) as session:
        calls = list(session.scalars(select(Invocation).order_by(Invocation.id)))
        return [(c, list(session.scalars(select(Decision).where(Decision.invocation_id == c.id)
                                         .order_by(Decision.id)))) for c in calls]


def topics(body: dict) -> list[str]:
    return [c["source"]["topic"]["code"] for c in body["cards"]]


def snooze(store: Store, card_uuid: str) -> None:
    item = feedback_item("snoozed", card=card_uuid, outcomeTimestamp=NOW.isoformat())
    assert store.record_feedback("spinehip-patient-view", [item]).stored == 1


def test_each_returned_card_is_audited_with_its_decision(store: Store) -> None:
    result = answer("s08-ces-with-hip-oa", store, tenant="clinic-north")
    [(call, decisions)] = audited(store)
    assert (call.service_id, call.hook, call.tenant) == (
        "spinehip-patient-view", "patient-view", "clinic-north"
    )
    assert call.ruleset_version == result.evaluation.ruleset_version
    [card] = result.body["cards"]
    [row] = decisions
    assert (row.rule_id, row.mode, row.indicator) == ("cauda-equina", "active", "critical")
    assert row.card_uuid == card["uuid"]
    assert row.suggestion_uuids == [s["uuid"] for s in card["suggestions"]]
    assert row.summary == card["summary"]
    assert row.evidence and all(ref in card["detail"] for ref in row.evidence)
    assert row.sources and all(title in card["detail"] for title in row.sources)


def test_shadow_decision_is_audited_without_a_card(store: Store) -> None:
    shadowed = dataclasses.replace(RULESET, rules=tuple(
        dataclasses.replace(r, spec=r.spec.model_copy(update={"mode": "shadow"}))
        if r.id == "spine-pattern-mri" else r for r in RULESET.rules))
    result = answer("s01-sciatica-8-weeks", store, ruleset=shadowed)
    assert result.body["cards"] == []
    [(_, decisions)] = audited(store)
    assert [(d.rule_id, d.mode, d.card_uuid) for d in decisions] == [
        ("spine-pattern-mri", "shadow", None)
    ]


def test_snoozed_card_is_neither_returned_nor_audited_and_is_traced(store: Store) -> None:
    first = answer("s01-sciatica-8-weeks", store)
    assert topics(first.body) == ["spine-pattern-mri"]
    snooze(store, first.body["cards"][0]["uuid"])

    again = answer("s01-sciatica-8-weeks", store)
    assert again.body["cards"] == []
    trace = {e["rule"]: e for e in again.evaluation.trace["rules"]}
    assert trace["spine-pattern-mri"]["status"] == "snoozed"
    (_, before), (_, after) = audited(store)
    assert [d.rule_id for d in before] == ["spine-pattern-mri"]
    assert after == []


def test_snoozed_order_guard_leaves_no_pama_system_action(store: Store) -> None:
    first = answer("early-sciatica-order-select-mri", store)
    assert topics(first.body) == ["early-lumbar-imaging"]
    assert [a["type"] for a in first.body["systemActions"]] == ["update"]
    card = first.body["cards"][0]
    offered = card["overrideReasons"][0]  # only a reason the card offered counts
    store.policy = dataclasses.replace(store.policy, snooze_reasons={offered["code"]: 30})
    item = {"card": card["uuid"], "outcome": "overridden", "overrideReason": {"reason": offered},
            "outcomeTimestamp": NOW.isoformat()}
    assert store.record_feedback("spinehip-order-select", [item]).stored == 1

    again = answer("early-sciatica-order-select-mri", store)
    assert again.body["cards"] == []
    assert "systemActions" not in again.body
    assert "systemActions" not in again.body.get("extension", {}).get("org.spinehip-cds", {})


def test_without_a_store_nothing_is_silenced_or_written(store: Store) -> None:
    first = answer("s01-sciatica-8-weeks", store)
    snooze(store, first.body["cards"][0]["uuid"])
    assert topics(answer("s01-sciatica-8-weeks", None).body) == ["spine-pattern-mri"]
    assert len(audited(store)) == 1
