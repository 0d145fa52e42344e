"""What the store tests record: one audited order-select call with a critical card, and the
feedback its client posts about it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.store import DecisionRecord, FeedbackReceipt, InvocationRecord, Store

DATA = Path(__file__).parents[1] / "store" / "data"


def feedback_item(name: str, **changes: Any) -> dict[str, Any]:
    """A feedback item from ``data/feedback.json`` with some fields replaced."""
    items = json.loads((DATA / "feedback.json").read_text())
    return {**items[name], **changes}


CARD = "0b6f6a52-5f0e-4d0c-9d8e-3f4f8e2c1a01"
SUGGESTION = "5d3c1b0e-2a44-4b7e-8e0a-7c1f3e9b2d11"
SERVICE = "spinehip-order-select"
ISSUER = "https://ehr-north.example.org"
TENANT = "clinic-north"
REASON_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/override-reason"
#: What the audited card offered, as the store records it.
OFFERED_REASONS = (f"{REASON_SYSTEM}|snooze-30d", f"{REASON_SYSTEM}|disagree")


def send(store: Store, *items: dict[str, Any], service: str = SERVICE, issuer: str | None = ISSUER,
         tenant: str | None = TENANT) -> FeedbackReceipt:
    """Feedback as the client that received the cards of :func:`invocation` posts it."""
    return store.record_feedback(service, list(items), issuer=issuer, tenant=tenant)


def invocation(patient_id: str = "patient-ces-1", **changes: object) -> InvocationRecord:
    fields: dict[str, object] = {
        "service_id": SERVICE,
        "hook": "order-select",
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "ruleset_version": "2026.11.0",
        "evaluation_ms": 14.5,
        "patient_id": patient_id,
        "user_id": "Practitioner/example",
        "issuer": ISSUER,
        "tenant": TENANT,
        "at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        "decisions": (
            DecisionRecord(
                rule_id="cauda-equina",
                indicator="critical",
                mode="active",
                card_uuid=CARD,
                suggestion_uuids=(SUGGESTION,),
                summary="Possible cauda equina syndrome",
                override_reasons=OFFERED_REASONS,
                evidence=("Observation/saddle-numbness",),
                sources=("ACR Low Back Pain",),
            ),
            DecisionRecord(rule_id="spine-pattern-mri", indicator="info", mode="shadow"),
        ),
    }
    fields.update(changes)
    return InvocationRecord(**fields)  # type: ignore[arg-type]
