"""Builders for FHIR records shaped the way real EHRs send them (clinical reference §2.0.1).

Small dict factories, so each test states only the one thing that is messy about its record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.cards import render
from service.config import PROJECT_ROOT
from service.engine import Evaluation, evaluate, load_ruleset

RULESET = load_ruleset(PROJECT_ROOT / "rules")
NOW = datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)
PID = "p1"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
LOCAL = "http://spinehip-cds.org/fhir/CodeSystem/finding"
PRESENT = {"coding": [{"system": SCT, "code": "52101004", "display": "Present"}]}
ABSENT = {"coding": [{"system": SCT, "code": "2667000", "display": "Absent"}]}
RETENTION = "267064002"
NUMB_LEG = "309537005"
FEVER = "386661006"

_ids = iter(range(10**6))


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def ahead(**delta: float) -> str:
    return (NOW + timedelta(**delta)).isoformat()


def day_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).date().isoformat()


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def patient(pid: str = PID, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-05-05", **extra}


def obs(code: dict[str, Any] | str, *, rid: str | None = None, status: str | None = "final",
        subject: str | None = f"Patient/{PID}", value: Any = PRESENT, when: Any = "now",
        **extra: Any) -> dict[str, Any]:
    """An Observation; `code` is a SNOMED code or a CodeableConcept; `when` an effectiveDateTime."""
    res: dict[str, Any] = {"resourceType": "Observation", "id": rid or f"o{next(_ids)}",
                           "code": concept(SCT, code) if isinstance(code, str) else code}
    if status is not None:
        res["status"] = status
    if subject is not None:
        res["subject"] = {"reference": subject}
    if when is not None:
        res["effectiveDateTime"] = NOW.isoformat() if when == "now" else when
    if isinstance(value, dict) and ("coding" in value or "text" in value):
        res["valueCodeableConcept"] = value
    elif isinstance(value, bool):
        res["valueBoolean"] = value
    elif isinstance(value, str):
        res["valueString"] = value
    elif value is not None:
        res.update(value)
    res.update(extra)
    return res


def cond(code: dict[str, Any] | str, *, rid: str | None = None, clinical: str | None = "active",
         verification: str | None = "confirmed", subject: str = f"Patient/{PID}",
         onset: Any = None, **extra: Any) -> dict[str, Any]:
    """A Condition; `code` is a SNOMED code or a CodeableConcept; `onset` an onsetDateTime."""
    res: dict[str, Any] = {"resourceType": "Condition", "id": rid or f"c{next(_ids)}",
                           "code": concept(SCT, code) if isinstance(code, str) else code,
                           "subject": {"reference": subject}}
    if clinical is not None:
        res["clinicalStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", clinical)
    if verification is not None:
        res["verificationStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification)
    if onset is not None:
        res["onsetDateTime"] = onset
    res.update(extra)
    return res


def back_pain(days: int = 10) -> dict[str, Any]:
    return cond("279039007", rid="lbp", onset=ago(days=days))


def mri_draft(rid: str = "mri") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "ServiceRequest", "id": rid, "status": "draft", "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "code": {"coding": [{"system": CPT, "code": "72148"}]}}}]}


def run(*resources: dict[str, Any], hook: str = "patient-view", drafts: Any = (),
        with_patient: bool = True, patient_id: str = PID) -> Evaluation:
    records = ([patient()] if with_patient else []) + list(resources)
    orders = [e["resource"] for e in drafts["entry"]] if drafts else []  # as the request parser gives them
    selections = [f"ServiceRequest/{o['id']}" for o in orders]
    return evaluate(RULESET, records, now=NOW, hook=hook, draft_orders=orders,
                    selections=selections, patient_id=patient_id)


def fired(ev: Evaluation) -> set[str]:
    return {d.rule_id for d in ev.active}


def card(ev: Evaluation, rule_id: str) -> dict[str, Any]:
    body = render(ev, patient_id=PID).body()
    return next(c for c in body["cards"] if c["source"]["topic"]["code"] == rule_id)
