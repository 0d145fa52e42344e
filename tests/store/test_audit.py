"""The audit trail: every returned card and every shadow decision, with the patient as configured."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store import AuditPolicy, DecisionRecord, Store
from service.store.schema import Decision, Invocation
from tests.support.store_records import CARD, invocation


def audit_rows(store: Store) -> tuple[Invocation, list[Decision]]:
    with Session(store.engine) as session:
        call = session.scalars(select(Invocation)).one()
        decisions = list(session.scalars(select(Decision).order_by(Decision.id)))
    return call, decisions


def test_invocation_is_recorded_with_who_when_what_and_source_attributes(store: Store) -> None:
    store.record_invocation(invocation())
    call, decisions = audit_rows(store)
    assert (call.service_id, call.hook, call.hook_instance) == (
        "spinehip-order-select",
        "order-select",
        "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    )
    assert call.at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert (call.ruleset_version, call.evaluation_ms) == ("2026.11.0", 14.5)
    assert (call.user_id, call.tenant) == ("Practitioner/example", "clinic-north")
    card = decisions[0]
    assert (card.rule_id, card.indicator, card.mode, card.card_uuid) == (
        "cauda-equina",
        "critical",
        "active",
        CARD,
    )
    assert card.suggestion_uuids == ["5d3c1b0e-2a44-4b7e-8e0a-7c1f3e9b2d11"]
    assert card.evidence == ["Observation/saddle-numbness"]
    assert card.sources == ["ACR Low Back Pain"]


def test_shadow_decision_is_audited_without_a_card(store: Store) -> None:
    store.record_invocation(invocation())
    _, decisions = audit_rows(store)
    shadow = decisions[1]
    assert (shadow.rule_id, shadow.mode, shadow.card_uuid) == ("spine-pattern-mri", "shadow", None)


def test_hash_policy_keeps_a_keyed_hmac_and_never_the_raw_id(store: Store) -> None:
    store.record_invocation(invocation("patient-ces-1"))
    call, _ = audit_rows(store)
    expected = hmac.new(b"test-secret", b"patient-ces-1", hashlib.sha256).hexdigest()
    assert call.patient_id is None
    assert call.patient_key == expected
    assert call.patient_key != hashlib.sha256(b"patient-ces-1").hexdigest()


def test_each_patient_key_is_the_hmac_of_that_id_alone() -> None:
    """The secret is keyed in once and copied for each key: no id carries into the next."""
    policy = AuditPolicy(patient_id="hash", secret="test-secret")
    for patient in ("patient-a", "patient-b", "patient-a", ""):
        expected = hmac.new(b"test-secret", patient.encode(), hashlib.sha256).hexdigest()
        assert policy.patient_key(patient) == expected


def test_store_policy_keeps_the_raw_patient_id(database_url: str) -> None:
    store = Store.from_url(database_url, AuditPolicy(patient_id="store", secret="s"))
    store.migrate()
    store.record_invocation(invocation("patient-ces-1"))
    call, _ = audit_rows(store)
    store.close()
    assert call.patient_id == "patient-ces-1"


def test_omit_policy_keeps_nothing_that_identifies_the_patient(database_url: str) -> None:
    store = Store.from_url(database_url, AuditPolicy(patient_id="omit", secret="s"))
    store.migrate()
    store.record_invocation(invocation("patient-ces-1"))
    call, _ = audit_rows(store)
    store.close()
    assert (call.patient_id, call.patient_key) == (None, None)


def test_different_secrets_give_unlinkable_patient_keys() -> None:
    one = AuditPolicy(secret="site-a").patient_key("patient-ces-1")
    two = AuditPolicy(secret="site-b").patient_key("patient-ces-1")
    assert one and two and one != two


def test_invocation_time_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        invocation(at=datetime(2026, 11, 20, 9, 0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patient_id": "everything"}, "policy must be one of"),
        ({"secret": ""}, "secret must not be empty"),
        ({"snooze_reasons": {"snooze-30d": 0}}, "positive number of days"),
    ],
)
def test_bad_audit_policy_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuditPolicy(**kwargs)  # type: ignore[arg-type]


def test_decision_mode_must_be_active_or_shadow() -> None:
    with pytest.raises(ValueError, match="active, shadow"):
        DecisionRecord(rule_id="cauda-equina", indicator="critical", mode="silent")
