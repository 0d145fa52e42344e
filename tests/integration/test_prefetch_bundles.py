"""A Bundle that cannot be read whole is refused, never read in part (clinical reference §2.0.1:
a record that could be a red flag is never silently dropped).

FHIR R4 Bundle: ``entry`` and ``link`` are lists of objects, and an entry's ``resource`` is a
resource. From the EHR's prefetch, anything else is a 400 naming the member; from the FHIR
server, a 412 naming the key (the data the rules need could not be had). Every refusal has a
positive twin, the same urinary retention in a well-formed Bundle, which gives the cauda equina
card.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from hook_calls import service_paths, service_settings, with_fhir_fallback

from tests.support.app import make_app

BASE = "https://ehr.example.org/fhir"
PID = "bundle-p1"
RETENTION = {"resourceType": "Observation", "id": "ret", "status": "final",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "267064002"}]},
             "subject": {"reference": f"Patient/{PID}"}}
PATIENT = {"resourceType": "Patient", "id": PID, "birthDate": "1970-01-01"}
EMPTY = {"resourceType": "Bundle", "type": "searchset"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    yield make_app(service_settings(tmp_path)).test_client()


def _retention() -> dict:
    return {**RETENTION, "effectiveDateTime": datetime.now(UTC).isoformat()}


def _request(observations: dict) -> dict:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": PID},
            "prefetch": {"patient": PATIENT, "conditions": EMPTY, "observations": observations,
                         "procedures": EMPTY, "diagnosticReports": EMPTY, "imagingStudies": EMPTY}}


def _post(client: FlaskClient, body: dict):
    return client.post(service_paths(client)["patient-view"], json=body)


def _topics(response) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {c["source"]["topic"]["code"] for c in response.get_json()["cards"]}


def _refused(response, status: int, field: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    issue = response.get_json()["issue"][0]
    assert field in issue["expression"], issue
    return issue["diagnostics"]


def _bundle(**members: object) -> dict:
    return {**EMPTY, **members}


# (Bundle members, the member a refusal names)
MALFORMED = [
    ({"entry": "resource"}, "entry"),
    ({"entry": 5}, "entry"),
    ({"entry": {"resource": "RETENTION"}}, "entry"),
    ({"entry": [{"resource": "RETENTION"}, None]}, "entry[1]"),
    ({"entry": [{"resource": "RETENTION"}, 7]}, "entry[1]"),
    ({"entry": ["x", {"resource": "RETENTION"}]}, "entry[0]"),
    ({"entry": ["RETENTION"]}, "entry[0]"),  # the resource itself where its entry belongs
    ({"entry": [{"resource": "RETENTION"}, {"resource": "Observation/ret"}]}, "entry[1].resource"),
    ({"entry": [{"resource": "RETENTION"}], "link": 5}, "link"),
    ({"entry": [{"resource": "RETENTION"}], "link": True}, "link"),
    ({"entry": [{"resource": "RETENTION"}], "link": {"relation": "self"}}, "link"),
    ({"entry": [{"resource": "RETENTION"}], "link": ["next"]}, "link[0]"),
]


def _with_retention(members: dict) -> dict:
    """``members`` with the retention record where the placeholder is."""
    def fill(value: object) -> object:
        if value == "RETENTION":
            return _retention()
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value
    return _bundle(**{k: fill(v) for k, v in members.items()})


@pytest.mark.parametrize(("members", "member"), MALFORMED)
def test_a_prefetch_bundle_that_cannot_be_read_whole_is_a_400_naming_the_member(client, members, member):
    response = _post(client, _request(_with_retention(members)))
    diagnostics = _refused(response, 400, f"prefetch.observations.{member}")
    assert f"prefetch.observations.{member}" in diagnostics


@pytest.mark.parametrize("members", [
    {"entry": [{"resource": "RETENTION"}]},
    {"entry": [{"resource": "RETENTION"}], "link": []},
    {"entry": [{"resource": "RETENTION"}], "link": [{"relation": "self", "url": f"{BASE}/Observation"}]},
    {"entry": [{"fullUrl": f"{BASE}/Observation/gone"}, {"resource": "RETENTION"}]},
])
def test_the_same_retention_in_a_well_formed_bundle_gives_the_ces_card(client, members):
    assert "cauda-equina" in _topics(_post(client, _request(_with_retention(members))))


def _fallback_request() -> dict:
    """Everything prefetched but the Observations, which come from the FHIR server."""
    prefetched = [key for key in _request(EMPTY)["prefetch"] if key != "observations"]
    return with_fhir_fallback(_request(EMPTY), fhir_server=BASE, token="t0ken-x",
                              keep_prefetch=prefetched)


@pytest.mark.parametrize(("members", "member"), [
    ({"entry": {"resource": "RETENTION"}}, "entry"),
    ({"entry": [{"resource": "RETENTION"}, None]}, "entry[1]"),
    ({"entry": [{"resource": "RETENTION"}], "link": 5}, "link"),
    ({"entry": [{"resource": "RETENTION"}]}, None),
])
def test_a_fhir_servers_bundle_that_cannot_be_read_whole_is_a_412_naming_the_key(client, members, member):
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/Observation", json=_with_retention(members))
        response = _post(client, _fallback_request())
    if member is None:
        assert "cauda-equina" in _topics(response)
    else:
        assert f"`{member}`" in _refused(response, 412, "prefetch.observations")
