"""An override with a snooze reason silences that rule for that patient of that client, for the
configured period counted from when the service received it, in every replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.store import AuditPolicy, Store
from tests.support.store_records import CARD, ISSUER, TENANT, feedback_item, invocation, send


def override(store: Store, example: str = "snoozed", **changes: object):
    return send(store, feedback_item(example, card=CARD, **changes))


def snoozed(store: Store, patient: str = "patient-a", at: datetime | None = None,
            issuer: str | None = ISSUER, tenant: str | None = TENANT) -> set[str]:
    return store.snoozed_rules(store.patient_key(patient), at, issuer=issuer, tenant=tenant)


def test_snooze_runs_for_the_configured_period_from_the_server_clock(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    before = datetime.now(UTC)
    override(store)  # its outcomeTimestamp is days in the past: it must not shorten the snooze
    after = datetime.now(UTC)
    assert snoozed(store, at=after + timedelta(days=29)) == {"cauda-equina"}
    assert snoozed(store, at=before + timedelta(days=30, seconds=1)) == set()


def test_an_outcome_timestamp_in_the_future_does_not_extend_the_snooze(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    receipt = override(store, outcomeTimestamp="3000-01-01T00:00:00Z")
    assert receipt.stored == 0
    assert snoozed(store, at=datetime.now(UTC) + timedelta(days=31)) == set()
    assert snoozed(store) == set()


def test_snooze_is_for_that_patient_only(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    override(store)
    assert snoozed(store, "patient-b") == set()
    assert snoozed(store, "patient-a") == {"cauda-equina"}


def test_snooze_is_for_that_client_only(store: Store) -> None:
    """Tenant B's patient with the same id as tenant A's keeps every card."""
    store.record_invocation(invocation("patient-a"))
    override(store)
    assert snoozed(store, tenant="clinic-south") == set()
    assert snoozed(store, issuer="https://ehr-south.example.org") == set()
    assert snoozed(store, issuer=None, tenant=None) == set()
    assert snoozed(store) == {"cauda-equina"}


def test_another_tenant_cannot_snooze_a_card_it_was_not_given(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    intruder = send(store, feedback_item("snoozed", card=CARD), tenant="clinic-south")
    assert intruder.stored == 0
    assert snoozed(store) == set()
    assert snoozed(store, tenant="clinic-south") == set()


def test_other_override_reasons_and_acceptance_do_not_snooze(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    assert override(store, "disagreed").stored == 1
    assert override(store, "accepted").stored == 1
    assert snoozed(store) == set()


def test_snooze_code_from_another_system_does_not_snooze(store: Store) -> None:
    store.record_invocation(invocation("patient-a"))
    foreign = {"reason": {"system": "http://example.org/reasons", "code": "snooze-30d"}}
    override(store, overrideReason=foreign)
    assert snoozed(store) == set()


def test_feedback_on_an_unknown_card_is_not_stored_and_snoozes_nothing(store: Store) -> None:
    assert send(store, feedback_item("snoozed")).stored == 0
    assert snoozed(store) == set()


def test_snooze_is_seen_by_another_store_on_the_same_database(
    store: Store, database_url: str, policy: AuditPolicy, faults
) -> None:
    store.record_invocation(invocation("patient-a"))
    override(store)
    other = Store.from_url(database_url, policy, faults)
    try:
        assert snoozed(other) == {"cauda-equina"}
    finally:
        other.close()


def test_omit_policy_cannot_snooze(database_url: str, faults) -> None:
    store = Store.from_url(database_url, AuditPolicy(patient_id="omit", secret="s"), faults)
    store.migrate()
    store.record_invocation(invocation("patient-a"))
    assert override(store).stored == 1
    assert snoozed(store) == set()
    store.close()
