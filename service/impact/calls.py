"""The hook calls one patient gets: every service the hooks define, order hooks with drafts.

Demo patients carry their own draft orders (``fixtures/order_requests.yaml``); any other patient
gets the *draft panel*: each distinct imaging order the fixture drafts contain, in one
draftOrders Bundle, so R4 and the PAMA ratings are exercised for every patient.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service import fixtures
from service.cdshooks.services import CdsService
from service.engine.hooks import HOOKS

PANEL = "draft panel"
ENCOUNTER_ID = "impact-replay"
USER_ID = "Practitioner/spinehip-impact-replay"


@dataclass(frozen=True)
class PatientRecord:
    """One patient's resources, and the draft-order Bundles to try (name -> Bundle)."""

    patient_id: str
    resources: list[dict[str, Any]]
    drafts: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class HookCall:
    label: str
    service: CdsService
    body: dict[str, Any]


def _retargeted(drafts: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    """The drafts Bundle with every draft's subject set to this patient."""
    out = copy.deepcopy(dict(drafts))
    for entry in out.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and "subject" in resource:
            resource["subject"] = {"reference": f"Patient/{patient_id}"}
    return out


def takes_drafts(hook: str) -> bool:
    """Order hooks: their context carries ``draftOrders``."""
    return any(f.name == "draftOrders" for f in HOOKS[hook].fields)


def _body(service: CdsService, patient_id: str, drafts: dict[str, Any] | None) -> dict[str, Any]:
    """A request body with no prefetch: the data comes through the demo-source path."""
    context: dict[str, Any] = {"userId": USER_ID, "patientId": patient_id}
    if service.hook == "encounter-start":
        context["encounterId"] = ENCOUNTER_ID
    if drafts is not None:
        context["draftOrders"] = drafts
        if service.hook == "order-select":
            context["selections"] = [f"{r['resourceType']}/{r['id']}"
                                     for r in fixtures.bundle_resources(drafts)
                                     if isinstance(r.get("resourceType"), str)
                                     and isinstance(r.get("id"), str)]
    return {"hookInstance": str(uuid.uuid4()), "hook": service.hook, "context": context}


def hook_calls(record: PatientRecord, services: Sequence[CdsService],
               panel: Mapping[str, Any]) -> Iterator[HookCall]:
    """Every service once; order-hook services once per draft Bundle of the patient."""
    for service in services:
        if not takes_drafts(service.hook):
            yield HookCall(service.hook, service, _body(service, record.patient_id, None))
            continue
        for name, drafts in (record.drafts or {PANEL: panel}).items():
            body = _body(service, record.patient_id, _retargeted(drafts, record.patient_id))
            yield HookCall(f"{service.hook} [{name}]", service, body)


def _codes(resource: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return tuple(sorted((c.get("system", ""), c.get("code", "")) for c in codings or ()
                        if isinstance(c, dict)))


def draft_panel(fixtures_dir: str | Path) -> dict[str, Any]:
    """One draftOrders Bundle with each distinct coded ServiceRequest of ``fixtures/drafts``."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for file in sorted(Path(fixtures_dir, "drafts").glob("*.json")):
        for resource in fixtures.bundle_resources(fixtures.read_json(file)):
            codes = _codes(resource)
            if resource.get("resourceType") == "ServiceRequest" and resource.get("id") and codes:
                seen.setdefault(codes, resource)
    entries = []
    for index, (codes, resource) in enumerate(sorted(seen.items())):
        draft = copy.deepcopy(resource)
        draft["id"] = f"panel-{index + 1}-{codes[0][1]}"
        entries.append({"resource": draft})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
