"""Hook requests built from patient Bundles, as an EHR would send them (tests and benchmarks).

The checked-in ``fixtures/requests/*.json`` are what ``planned_requests`` makes, so they cannot
drift from the patients; ``fixtures/build_requests.py`` rewrites them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from service.fixtures import (
    FixtureError,
    bundle_resources,
    expect_type,
    patient_of,
    read_json,
    resource_entries,
)
from service.yamlsource import ConfigFileError, load_yaml

# Prefetch key -> FHIR resource type, as templated in hooks/*.yaml. The Patient key carries the
# resource itself; every other key a searchset Bundle.
PREFETCH_RESOURCE_TYPES: dict[str, str] = {
    "patient": "Patient",
    "conditions": "Condition",
    "observations": "Observation",
    "procedures": "Procedure",
    "diagnosticReports": "DiagnosticReport",
    "imagingStudies": "ImagingStudy",
}
ORDER_HOOKS = frozenset({"order-select", "order-sign"})
HOOKS = frozenset({"patient-view"}) | ORDER_HOOKS
DEFAULT_USER_ID = "Practitioner/spinehip-demo-clinician"
# Fixed namespace so a request rebuilt from the same Bundle gets the same hookInstance.
_HOOK_INSTANCE_NAMESPACE = uuid.UUID("5b1f3c52-7d0e-4f1a-9a53-2f6a0c1e8d47")



def _searchset(entries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:  # CDS Hooks forbids empty arrays in JSON it exchanges
        out["entry"] = [
            {"fullUrl": e["fullUrl"], "resource": e["resource"], "search": {"mode": "match"}}
            if e.get("fullUrl") else {"resource": e["resource"], "search": {"mode": "match"}}
            for e in entries
        ]
    return out


def _draft_bundle(draft_orders: Mapping[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(draft_orders, Mapping):
        return dict(draft_orders)
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": resource} for resource in draft_orders]}


def _order_context(hook: str, draft_orders: Mapping[str, Any] | list[dict[str, Any]] | None,
                   selections: list[str] | None) -> dict[str, Any]:
    """``draftOrders`` (and for order-select ``selections``, by default every draft)."""
    if hook not in ORDER_HOOKS:
        if draft_orders is not None or selections is not None:
            raise ValueError("draft_orders and selections belong to order-select/order-sign only")
        return {}
    if draft_orders is None:
        raise ValueError(f"{hook} needs draft_orders")
    drafts = _draft_bundle(draft_orders)
    if hook != "order-select":
        return {"draftOrders": drafts}
    if selections is None:
        selections = [f"{r['resourceType']}/{r['id']}" for r in bundle_resources(drafts)
                      if r.get("resourceType") and r.get("id")]
    return {"selections": list(selections), "draftOrders": drafts}


def build_request(
    bundle: Mapping[str, Any],
    *,
    hook: str,
    prefetch_keys: Iterable[str] | None,
    patient_id: str,
    draft_orders: Mapping[str, Any] | list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
    user_id: str = DEFAULT_USER_ID,
) -> dict[str, Any]:
    """A CDS Hooks 2.0 request whose prefetch is the patient Bundle grouped by prefetch key.

    ``prefetch_keys`` None means every key; a subset leaves the others out, as an EHR that
    prefetches only part of what the service asked for would. The hookInstance is derived from
    hook and context so a regenerated request is byte-identical. Date tokens are left as they are.
    """
    if hook not in HOOKS:
        raise ValueError(f"unsupported hook {hook!r}; expected one of {sorted(HOOKS)}")
    keys = list(PREFETCH_RESOURCE_TYPES) if prefetch_keys is None else list(prefetch_keys)
    unknown = [k for k in keys if k not in PREFETCH_RESOURCE_TYPES]
    if unknown:
        raise ValueError(f"unknown prefetch keys {unknown}; known: {list(PREFETCH_RESOURCE_TYPES)}")
    patient = patient_of(bundle)
    if patient is None or patient.get("id") != patient_id:
        raise ValueError(f"the Bundle has no Patient with id {patient_id!r}")

    context: dict[str, Any] = {"userId": user_id, "patientId": patient_id,
                               **_order_context(hook, draft_orders, selections)}
    entries = resource_entries(bundle)
    prefetch: dict[str, Any] = {
        key: patient if rtype == "Patient" else
        _searchset([e for e in entries if e["resource"].get("resourceType") == rtype])
        for key, rtype in PREFETCH_RESOURCE_TYPES.items() if key in keys
    }

    # Derived from the whole context so two requests for one patient never share an instance.
    instance = uuid.uuid5(_HOOK_INSTANCE_NAMESPACE, json.dumps([hook, context], sort_keys=True))
    return {"hookInstance": str(instance), "hook": hook, "context": context, "prefetch": prefetch}


ORDER_REQUESTS_FILE = "order_requests.yaml"


def _order_specs(root: Path) -> list[dict[str, str]]:
    doc = load_yaml(root / ORDER_REQUESTS_FILE)
    specs = doc.data.get("orders") if isinstance(doc.data, dict) else None
    if not isinstance(specs, list):
        raise ConfigFileError([doc.error(("orders",), "expected a top-level `orders:` list")])
    errors = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"request", "patient", "hook"}:
            errors.append(doc.error(("orders", index), "needs exactly `request`, `patient`, `hook`"))
        elif spec["hook"] not in ORDER_HOOKS:
            errors.append(doc.error(("orders", index, "hook"), f"not an order hook: {spec['hook']}"))
    if errors:
        raise ConfigFileError(errors)
    return specs


def planned_requests(fixtures_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Request file name -> the request build_request makes for it (date tokens unrendered).

    One patient-view request per patient Bundle, plus the order-hook requests listed in
    ``order_requests.yaml`` with their drafts from ``drafts/<request>.json``. The checked-in
    files under ``requests/`` must equal this, so they cannot drift from the patients.
    """
    root = Path(fixtures_dir)
    bundles = {f.stem: read_json(f) for f in sorted((root / "patients").glob("*.json"))}

    def patient_id(slug: str) -> str:
        patient = patient_of(bundles[slug])
        if patient is None:
            raise FixtureError(f"patients/{slug}.json", "$.entry", "no Patient resource")
        return patient["id"]

    out = {slug: build_request(bundle, hook="patient-view", prefetch_keys=None,
                               patient_id=patient_id(slug))
           for slug, bundle in bundles.items()}
    for spec in _order_specs(root):
        slug = spec["patient"]
        if slug not in bundles:
            raise FixtureError(ORDER_REQUESTS_FILE, f"$.{spec['request']}", f"no patient {slug!r}")
        drafts = read_json(root / "drafts" / f"{spec['request']}.json")
        expect_type(drafts, "Bundle", f"drafts/{spec['request']}.json")
        out[spec["request"]] = build_request(
            bundles[slug], hook=spec["hook"], prefetch_keys=None, patient_id=patient_id(slug),
            draft_orders=drafts,
        )
    return out


