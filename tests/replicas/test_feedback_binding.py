"""Feedback bound to what was issued, on two production replicas: a card counts only for the
client (issuer and tenant) and the service it was issued to; snoozes stay within the tenant;
a client clock cannot set a snooze's end; limits answer without a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service import fixtures
from service.store.feedback import NOT_ISSUED
from tests.support.replicas import OTHER_TENANT, SNOOZE_REASON, Replica, Signer

from .test_two_replicas import FEEDBACK, PATIENT_VIEW, REQUESTS, cards_by_topic, now_instant

pytestmark = pytest.mark.postgres

HIP = "s03-hip-pattern-left"
ORDER_SELECT_FEEDBACK = "/cds-services/spinehip-order-select/feedback"


def override(card: dict[str, Any], timestamp: str | None = None) -> dict[str, Any]:
    reason = next(r for r in card["overrideReasons"] if r["code"] == SNOOZE_REASON)
    return {"feedback": [{
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason},
        "outcomeTimestamp": timestamp or now_instant(),
    }]}


def post(replica: Replica, sign: Signer, path: str, body: dict, tenant: str | None = None):
    return replica.call(sign, path, body, token=sign(replica.url + path, tenant=tenant))


def test_another_tenant_cannot_store_feedback_on_or_silence_a_card(replicas, sign) -> None:
    a, b = replicas
    card = cards_by_topic(a, sign, HIP)["hip-pattern-radiographs"]

    foreign = post(b, sign, FEEDBACK, override(card), tenant=OTHER_TENANT)
    wrong_service = post(b, sign, ORDER_SELECT_FEEDBACK, override(card))

    assert foreign.status_code == 200
    assert foreign.json()["stored"] == 0
    assert foreign.json()["notStored"][0]["reason"] == NOT_ISSUED
    assert wrong_service.json()["stored"] == 0
    assert "hip-pattern-radiographs" in cards_by_topic(a, sign, HIP), "the foreign snooze silenced nothing"

    own = post(b, sign, FEEDBACK, override(card))
    assert own.json() == {"received": 1, "stored": 1}
    assert "hip-pattern-radiographs" not in cards_by_topic(a, sign, HIP)


def test_a_snooze_by_one_tenant_leaves_the_other_tenants_same_patient_id_alone(replicas, sign) -> None:
    a, _ = replicas
    card = cards_by_topic(a, sign, "s04-mixed-hip-oa-stenosis")["diagnostic-hip-injection"]
    assert post(a, sign, FEEDBACK, override(card)).json()["stored"] == 1

    # The same request (same patient id) from tenant B's EHR.
    body = fixtures.load_request(REQUESTS / "s04-mixed-hip-oa-stenosis.json", datetime.now(UTC))
    other = a.call(sign, PATIENT_VIEW, body, token=sign(a.url + PATIENT_VIEW, tenant=OTHER_TENANT))
    mine = cards_by_topic(a, sign, "s04-mixed-hip-oa-stenosis")
    topics = {c["source"]["topic"]["code"] for c in other.json()["cards"]}
    assert "diagnostic-hip-injection" in topics
    assert "diagnostic-hip-injection" not in mine


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00"])
def test_a_timestamp_in_year_9999_is_named_not_a_500(replicas, sign, timestamp: str) -> None:
    a, b = replicas
    card = cards_by_topic(a, sign, "s05-injection-relief-75")
    first = next(iter(card.values()))
    item = {"card": first["uuid"], "outcome": "overridden",
            "overrideReason": {"userComment": "later"}, "outcomeTimestamp": timestamp}
    response = post(b, sign, FEEDBACK, {"feedback": [item]})
    assert response.status_code == 200
    assert response.json()["notStored"][0]["reason"].startswith("outcomeTimestamp is ")


def test_too_many_items_is_413_naming_the_member_and_the_cap_itself_is_accepted(replicas, sign) -> None:
    a, _ = replicas
    item = {"card": "00000000-0000-4000-8000-000000000000", "outcome": "overridden",
            "overrideReason": {"userComment": "x"}, "outcomeTimestamp": now_instant()}
    over = post(a, sign, FEEDBACK, {"feedback": [item] * 101})
    at_cap = post(a, sign, FEEDBACK, {"feedback": [item] * 100})
    assert over.status_code == 413
    assert over.json()["issue"][0]["expression"] == ["feedback"]
    assert at_cap.status_code == 200
    assert at_cap.json()["stored"] == 0 and len(at_cap.json()["notStored"]) == 100
