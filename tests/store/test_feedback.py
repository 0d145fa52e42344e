"""Feedback is stored once however often the EHR resends it, and links to its card's rule."""

from __future__ import annotations

import threading

from conftest import CARD, feedback_item, invocation

from service.store import Store


def test_new_items_are_counted_and_a_resend_stores_nothing(store: Store) -> None:
    items = [feedback_item("accepted"), feedback_item("disagreed")]
    assert store.record_feedback("spinehip-order-select", items) == 2
    assert store.record_feedback("spinehip-order-select", items) == 0


def test_same_instant_in_another_zone_is_the_same_item(store: Store) -> None:
    store.record_feedback("svc", [feedback_item("accepted")])
    shifted = feedback_item("accepted", outcomeTimestamp="2026-11-20T10:15:00+01:00")
    assert store.record_feedback("svc", [shifted]) == 0


def test_a_later_outcome_or_other_suggestions_are_new_items(store: Store) -> None:
    store.record_feedback("svc", [feedback_item("accepted")])
    later = feedback_item("accepted", outcomeTimestamp="2026-11-21T09:15:00Z")
    other = feedback_item("accepted", acceptedSuggestions=[{"id": "another-suggestion"}])
    assert store.record_feedback("svc", [later, other]) == 2


def test_feedback_is_linked_to_the_rule_by_card_uuid(store: Store) -> None:
    store.record_invocation(invocation())
    store.record_feedback("svc", [feedback_item("disagreed", card=CARD)], user_id="Practitioner/1")
    [linked] = store.feedback_activity()
    assert (linked.rule_id, linked.outcome, linked.reason_code) == (
        "cauda-equina",
        "overridden",
        "disagree",
    )


def test_concurrent_resends_from_two_replicas_store_one_item(database_url: str, policy) -> None:
    replicas = [Store.from_url(database_url, policy) for _ in range(2)]
    replicas[0].migrate()
    stored: list[int] = []
    barrier = threading.Barrier(2)

    def send(store: Store) -> None:
        barrier.wait()
        stored.append(store.record_feedback("svc", [feedback_item("accepted")]))

    threads = [threading.Thread(target=send, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for store in replicas:
        store.close()
    assert sorted(stored) == [0, 1]
