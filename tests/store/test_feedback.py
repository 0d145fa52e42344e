"""Feedback counts only for cards this service issued to this client, once however often the
EHR resends it; every item not stored is named with its reason."""

from __future__ import annotations

import threading

import pytest

from service.store import Store
from service.store.feedback import NOT_ISSUED
from tests.support.store_records import (
    CARD,
    ISSUER,
    REASON_SYSTEM,
    SUGGESTION,
    TENANT,
    feedback_item,
    invocation,
    send,
)


@pytest.fixture
def issued(store: Store) -> Store:
    """A store whose audit trail holds CARD, returned by SERVICE to ISSUER/TENANT."""
    store.record_invocation(invocation())
    return store


def accepted(**changes: object) -> dict:
    return feedback_item("accepted", card=CARD, **changes)


def reasons(receipt) -> list[str]:
    return [r.reason for r in receipt.refused]


def test_feedback_on_an_issued_card_is_stored_and_a_resend_is_named_as_such(issued: Store) -> None:
    first = send(issued, accepted())
    again = send(issued, accepted())
    assert (first.stored, first.refused) == (1, ())
    assert (again.stored, reasons(again)) == (0, ["already received"])


def test_same_instant_in_another_zone_is_the_same_item(issued: Store) -> None:
    send(issued, accepted())
    assert send(issued, accepted(outcomeTimestamp="2026-11-20T10:15:00+01:00")).stored == 0


def test_a_later_outcome_is_a_new_item(issued: Store) -> None:
    send(issued, accepted())
    assert send(issued, accepted(outcomeTimestamp="2026-11-21T09:15:00Z")).stored == 1


def test_a_card_this_service_never_issued_is_not_stored(issued: Store) -> None:
    receipt = send(issued, feedback_item("accepted", card="4f1d2c3b-0000-4000-8000-000000000000"), accepted())
    assert receipt.stored == 1
    assert [(r.item, r.reason) for r in receipt.refused] == [("feedback[0]", NOT_ISSUED)]


@pytest.mark.parametrize(
    ("issuer", "tenant"),
    [("https://ehr-south.example.org", TENANT), (ISSUER, "clinic-south"), (None, None)],
)
def test_another_clients_card_is_refused_like_an_unknown_one(issued: Store, issuer, tenant) -> None:
    foreign = send(issued, accepted(), issuer=issuer, tenant=tenant)
    own = send(issued, accepted())
    assert (foreign.stored, reasons(foreign)) == (0, [NOT_ISSUED])
    assert own.stored == 1


def test_feedback_through_another_services_url_is_refused(issued: Store) -> None:
    wrong = send(issued, accepted(), service="spinehip-patient-view")
    right = send(issued, accepted())
    assert wrong.stored == 0
    assert "spinehip-order-select" in reasons(wrong)[0]
    assert right.stored == 1


def test_accepting_a_suggestion_the_card_did_not_offer_is_refused(issued: Store) -> None:
    other = send(issued, accepted(acceptedSuggestions=[{"id": "another-suggestion"}]))
    offered = send(issued, accepted(acceptedSuggestions=[{"id": SUGGESTION}]))
    assert (other.stored, offered.stored) == (0, 1)
    assert "another-suggestion" in reasons(other)[0]


def test_only_override_reasons_the_card_offered_count(issued: Store) -> None:
    invented = {"reason": {"system": REASON_SYSTEM, "code": "never-offered"}}
    refused = send(issued, feedback_item("disagreed", card=CARD, overrideReason=invented))
    stored = send(issued, feedback_item("disagreed", card=CARD))
    assert (refused.stored, reasons(refused)) == (0, ["this override reason was not offered on this card"])
    assert stored.stored == 1


def test_an_override_with_only_a_comment_needs_no_offered_reason(issued: Store) -> None:
    comment_only = feedback_item("disagreed", card=CARD, overrideReason={"userComment": "seen already"})
    assert send(issued, comment_only).stored == 1


@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "3000-01-01T00:00:00Z"]
)
def test_timestamps_far_in_the_future_are_refused_not_an_error(issued: Store, instant: str) -> None:
    future = send(issued, accepted(outcomeTimestamp=instant))
    present = send(issued, accepted())
    assert future.stored == 0
    assert "outcomeTimestamp" in reasons(future)[0]
    assert present.stored == 1


def test_items_of_one_request_are_answered_each(issued: Store) -> None:
    receipt = send(issued, accepted(), feedback_item("accepted", card="unknown-card"), accepted())
    assert receipt.to_json() == {
        "received": 3,
        "stored": 1,
        "notStored": [
            {"item": "feedback[1]", "card": "unknown-card", "reason": NOT_ISSUED},
            {"item": "feedback[2]", "card": CARD, "reason": "already received"},
        ],
    }


def test_feedback_is_linked_to_the_rule_by_card_uuid(issued: Store) -> None:
    send(issued, feedback_item("disagreed", card=CARD))
    [linked] = issued.feedback_activity()
    assert (linked.rule_id, linked.outcome, linked.reason_code) == ("cauda-equina", "overridden", "disagree")


def test_concurrent_resends_from_two_replicas_store_one_item(database_url: str, policy, faults) -> None:
    replicas = [Store.from_url(database_url, policy, faults) for _ in range(2)]
    replicas[0].migrate()
    replicas[0].record_invocation(invocation())
    stored: list[int] = []
    barrier = threading.Barrier(2)

    def post(store: Store) -> None:
        barrier.wait()
        stored.append(send(store, accepted()).stored)

    threads = [threading.Thread(target=post, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for store in replicas:
        store.close()
    assert sorted(stored) == [0, 1]
