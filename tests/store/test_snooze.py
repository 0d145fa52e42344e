"""An override with a snooze reason silences that rule for that patient, in every replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import CARD, feedback_item, invocation

from service.store import AuditPolicy, Store

OVERRIDE_AT = datetime(2026, 11, 20, 9, 20, tzinfo=UTC)


def override(store: Store, example: str = "snoozed", **changes: object) -> None:
    store.record_feedback("svc", [feedback_item(example, card=CARD, **changes)])


def test_snooze_reason_silences_the_rule_for_the_configured_period(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    override(store)
    key = store.patient_key("patient-a")
    assert store.snoozed_rules(key, OVERRIDE_AT + timedelta(days=29)) == {"cauda-equina"}
    assert store.snoozed_rules(key, OVERRIDE_AT + timedelta(days=30, seconds=1)) == set()


def test_snooze_is_for_that_patient_only(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    override(store)
    assert store.snoozed_rules(store.patient_key("patient-b"), OVERRIDE_AT) == set()


def test_other_override_reasons_and_acceptance_do_not_snooze(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    override(store, "disagreed")
    override(store, "accepted")
    assert store.snoozed_rules(store.patient_key("patient-a"), OVERRIDE_AT) == set()


def test_snooze_code_from_another_system_does_not_snooze(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    foreign = {"reason": {"system": "http://example.org/reasons", "code": "snooze-30d"}}
    override(store, overrideReason=foreign)
    assert store.snoozed_rules(store.patient_key("patient-a"), OVERRIDE_AT) == set()


def test_feedback_on_an_unknown_card_is_stored_but_snoozes_nothing(store: Store) -> None:
    assert store.record_feedback("svc", [feedback_item("snoozed")]) == 1
    assert store.snoozed_rules(store.patient_key("patient-a"), OVERRIDE_AT) == set()


def test_snooze_is_seen_by_another_store_on_the_same_database(
    store: Store, database_url: str, policy: AuditPolicy
) -> None:
    store.record_invocation(invocation("patient-a"))
    override(store)
    other = Store.from_url(database_url, policy)
    try:
        assert other.snoozed_rules(other.patient_key("patient-a"), OVERRIDE_AT) == {"cauda-equina"}
    finally:
        other.close()


def test_omit_policy_cannot_snooze(database_url: str) -> None:
    store = Store.from_url(database_url, AuditPolicy(patient_id="omit", secret="s"))
    store.migrate()
    store.record_invocation(invocation("patient-a"))
    override(store)
    assert store.snoozed_rules(store.patient_key("patient-a"), OVERRIDE_AT) == set()
    store.close()
