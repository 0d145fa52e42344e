"""Synthetic patient-view requests of a chosen size, cloned from the fixture patients.

A real chart holds far more than the findings the rules read: vital signs, laboratory results,
questionnaires. Here most resources are fixture Observations re-coded with an EHR-local code that
no value set maps (the engine must pass them over cheaply); about one in ten keeps its fixture
code, so findings still match and cards still fire. The same seed gives the same request.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.config import PROJECT_ROOT
from service.fixtures import load_bundle
from service.fixtures_load import rewrite_references
from tests.support.fixture_requests import build_request

FIXTURES = PROJECT_ROOT / "fixtures"
BASE_PATIENT = FIXTURES / "patients" / "s04-mixed-hip-oa-stenosis.json"
# Codes an EHR uses for its own observations; example.org marks the system as site-local.
LOCAL_CODE_SYSTEM = "http://ehr.example.org/fhir/CodeSystem/local-observation"
LOCAL_CODES = 300
RELEVANT_SHARE = 0.1
CLONED_TYPES = ("Observation", "Condition")


@dataclass(frozen=True)
class SyntheticRequest:
    """One request body and what it holds."""

    size: int
    patient_id: str
    body: dict[str, Any]
    resources: list[dict[str, Any]]


def _fixture_resources(now: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    """(patient reference, resource) for every clonable resource of every fixture patient."""
    for path in sorted((FIXTURES / "patients").glob("*.json")):
        resources = [e["resource"] for e in load_bundle(path, now).get("entry", [])]
        patient = next((r for r in resources if r["resourceType"] == "Patient"), None)
        if patient is None:
            continue
        for resource in resources:
            # partOf points at a Procedure of the source patient; a clone would dangle.
            if resource["resourceType"] in CLONED_TYPES and "partOf" not in resource:
                yield f"Patient/{patient['id']}", resource


def _recoded(resource: dict[str, Any], index: int) -> dict[str, Any]:
    """The Observation with an EHR-local code in place of its own: data no rule reads."""
    number = index % LOCAL_CODES + 1
    resource["code"] = {
        "coding": [{"system": LOCAL_CODE_SYSTEM, "code": f"obs-{number:04d}",
                    "display": f"Local observation {number}"}]
    }
    return resource


def synthetic_request(size: int, now: datetime, *, seed: int = 2026) -> SyntheticRequest:
    """A patient-view request whose prefetch holds ``size`` resources (the Patient included)."""
    if size < 2:
        raise ValueError("a synthetic prefetch needs at least the Patient and one other resource")
    rng = random.Random(seed)
    base = load_bundle(BASE_PATIENT, now)
    patient = copy.deepcopy(next(e["resource"] for e in base["entry"]
                                 if e["resource"]["resourceType"] == "Patient"))
    patient["id"] = f"bench-{size}"
    own_ref = f"Patient/{patient['id']}"
    pool = list(_fixture_resources(now))
    observations = [item for item in pool if item[1]["resourceType"] == "Observation"]

    resources: list[dict[str, Any]] = [patient]
    relevant = max(1, round((size - 1) * RELEVANT_SHARE))
    for index in range(size - 1):
        source_ref, source = rng.choice(pool if index < relevant else observations)
        clone = rewrite_references(source, {source_ref: own_ref})
        clone["id"] = f"bench-{size}-{index:05d}"
        resources.append(clone if index < relevant else _recoded(clone, index))
    rng.shuffle(resources)

    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": resource} for resource in resources]}
    body = build_request(bundle, hook="patient-view", prefetch_keys=None, patient_id=patient["id"])
    return SyntheticRequest(size, patient["id"], body, resources)
