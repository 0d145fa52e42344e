"""Calling the service as an EHR would, and reducing its answer to what the fallback must keep.

A card's identity here is its topic, indicator and the CPT codes of the orders it suggests: the
uuids differ per call by design, and the resource references in ``detail`` name the ids the data
had on the server it came from.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from service.config import Settings
from service.fixtures_load import rewrite_references

CPT = "http://www.ama-assn.org/go/cpt"
CardSignature = tuple[str, str, tuple[str, ...]]


def service_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Development settings with no demo patients: what is not prefetched must come from FHIR."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'spinehip.db'}",
        "demo_patients": False,
    }
    values.update(overrides)
    return Settings(**values)


def card_signatures(answer: Mapping[str, Any]) -> list[CardSignature]:
    """(topic, indicator, sorted CPT codes of the suggested orders) per card, sorted."""
    out = []
    for card in answer["cards"]:
        codes = {
            coding["code"]
            for suggestion in card.get("suggestions", [])
            for action in suggestion.get("actions", [])
            for coding in ((action.get("resource") or {}).get("code") or {}).get("coding", [])
            if coding.get("system") == CPT
        }
        out.append((card["source"]["topic"]["code"], card["indicator"], tuple(sorted(codes))))
    return sorted(out)


def service_paths(client: FlaskClient) -> dict[str, str]:
    """Hook -> invocation path, from the discovery endpoint."""
    discovery = client.get("/cds-services")
    assert discovery.status_code == 200, discovery.get_data(as_text=True)
    return {s["hook"]: f"/cds-services/{s['id']}" for s in discovery.get_json()["services"]}


def with_suffixed_ids(request: Mapping[str, Any], targets: Mapping[str, str]) -> dict[str, Any]:
    """The request as it reads for patients loaded with an id suffix (see fixtures_load)."""
    body = rewrite_references(copy.deepcopy(dict(request)), targets)
    patient_ref = targets[f"Patient/{body['context']['patientId']}"]
    body["context"]["patientId"] = patient_ref.partition("/")[2]
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        resources = [e["resource"] for e in value.get("entry", [])] if value.get(
            "resourceType") == "Bundle" else [value]
        for resource in resources:
            new = targets.get(f"{resource.get('resourceType')}/{resource.get('id')}")
            if new is not None:
                resource["id"] = new.partition("/")[2]
    return body


def with_fhir_fallback(
    request: Mapping[str, Any],
    *,
    fhir_server: str,
    token: str | None,
    keep_prefetch: Iterable[str] = (),
) -> dict[str, Any]:
    """The request with only ``keep_prefetch`` keys prefetched and a FHIR server for the rest."""
    body = copy.deepcopy(dict(request))
    keep = set(keep_prefetch)
    prefetch = {k: v for k, v in (body.pop("prefetch", None) or {}).items() if k in keep}
    if prefetch:
        body["prefetch"] = prefetch
    body["fhirServer"] = fhir_server
    if token is not None:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "spinehip-cds",
        }
    return body
