"""Nothing a caller or a FHIR server chooses becomes a metric label: ``/metrics`` cannot be flooded.

A label value is a new time series in every scrape and a new file in the multiprocess directory,
so request text as a label lets anyone without a token grow both without bound.
"""

from __future__ import annotations

import copy
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.fhir_spec import R4_RESOURCE_TYPES
from tests.support.hostile_service import PATIENT_VIEW, RED_FLAG_PATIENT, HostileSetup, load_fixture

pytestmark = pytest.mark.postgres

KNOWN_SERVICES = {"spinehip-patient-view", "spinehip-order-select", "spinehip-order-sign",
                  "spinehip-encounter-start"}

Series = set[tuple[str, frozenset[tuple[str, str]]]]


def series(hostile: HostileSetup) -> Series:
    text = requests.get(hostile.service.base_url + "/metrics", timeout=30).text
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def label_values(found: Series, label: str) -> set[str]:
    return {value for _, labels in found for name, value in labels if name == label}


def post_to_random_services(hostile: HostileSetup, count: int) -> None:
    with requests.Session() as session:
        for _ in range(count):
            response = session.post(
                f"{hostile.service.base_url}/cds-services/{uuid.uuid4()}", json={}, timeout=30
            )
            assert response.status_code == 401


def test_random_service_ids_add_no_series(hostile: HostileSetup) -> None:
    post_to_random_services(hostile, 3)
    series(hostile)  # the scrape itself is a request: let its own series exist first
    before = series(hostile)
    post_to_random_services(hostile, 150)
    after = series(hostile)
    assert after == before
    assert label_values(after, "service") <= KNOWN_SERVICES | {"unknown", ""}


def test_a_known_service_is_labelled_by_its_id(hostile: HostileSetup) -> None:
    response = hostile.hook_call("healthy")
    assert response.status_code == 200, response.text
    found = series(hostile)
    labels = frozenset({"service": PATIENT_VIEW, "status": "200"}.items())
    assert ("spinehip_request_seconds_count", labels) in found
    assert "Condition" in label_values(found, "resource")


def paged_prefetch_call(hostile: HostileSetup) -> requests.Response:
    """A prefetch whose Condition Bundle continues at a server-chosen path on the FHIR server."""
    server = hostile.servers["random-paging"]
    body = copy.deepcopy(load_fixture("patient-view-fallback.json"))
    body["hookInstance"] = str(uuid.uuid4())
    body["context"]["patientId"] = RED_FLAG_PATIENT
    body["fhirServer"] = server.base_url
    body["prefetch"] = {"conditions": {
        "resourceType": "Bundle", "type": "searchset", "entry": [],
        "link": [{"relation": "next", "url": f"{server.base_url}/Qq{uuid.uuid4().hex}?page=2"}],
    }}
    return hostile.post(f"/cds-services/{PATIENT_VIEW}", body)


def test_paging_link_paths_are_not_labels(hostile: HostileSetup) -> None:
    for _ in range(3):
        assert paged_prefetch_call(hostile).status_code == 412
    resources = label_values(series(hostile), "resource")
    assert "other" in resources
    assert resources <= R4_RESOURCE_TYPES | {"other"}
