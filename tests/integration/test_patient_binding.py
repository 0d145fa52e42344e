"""Whose record (clinical reference §2.0.1): prefetch and FHIR fallback bind every resource.

A resource counts only when it is of the type the prefetch template asked for and its
subject/patient is the context patient. Anything else is excluded, counted by reason in the
response extension, and never shown in an evidence line. The misbehaving FHIR server is a
``responses`` fault injection: a real server filters by patient and cannot be made to err.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from hook_calls import service_paths, service_settings

from service import fixtures
from service.config import PROJECT_ROOT
from tests.support.app import make_app

BASE = "https://ehr.example.org/fhir"
PID = "bind-p1"
EXT = "org.spinehip-cds"
SCT = "http://snomed.info/sct"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    yield make_app(service_settings(tmp_path)).test_client()


def _now_retention(rid: str, subject: str) -> dict:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": SCT, "code": "267064002"}]},
            "subject": {"reference": subject}, "effectiveDateTime": datetime.now(UTC).isoformat()}


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


PATIENT = {"resourceType": "Patient", "id": PID, "birthDate": "1970-01-01"}
EMPTY = _bundle()


def _request(prefetch: dict | None = None, **extra) -> dict:
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": PID}, **extra}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def _full_prefetch(observations: dict, conditions: dict = EMPTY) -> dict:
    return {"patient": PATIENT, "conditions": conditions, "observations": observations,
            "procedures": EMPTY, "diagnosticReports": EMPTY, "imagingStudies": EMPTY}


def _call(client: FlaskClient, body: dict) -> dict:
    path = service_paths(client)["patient-view"]
    answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def _topics(answer: dict) -> set[str]:
    return {c["source"]["topic"]["code"] for c in answer["cards"]}


def _excluded(answer: dict) -> dict:
    """Empty members are pruned from a response, so no exclusions is no member."""
    return answer["extension"][EXT].get("dataQuality", {}).get("excluded", {})


def test_the_context_patients_retention_gives_the_ces_card(client):
    answer = _call(client, _request(_full_prefetch(
        _bundle(_now_retention("mine", f"Patient/{PID}")))))
    assert "cauda-equina" in _topics(answer)
    assert _excluded(answer) == {}


def test_another_patients_retention_in_prefetch_never_counts_and_is_reported(client, caplog):
    caplog.set_level(logging.INFO)
    answer = _call(client, _request(_full_prefetch(
        _bundle(_now_retention("theirs", "Patient/someone-else")))))
    assert "cauda-equina" not in _topics(answer)
    assert _excluded(answer) == {"other-patient": 1}
    assert "theirs" not in json.dumps(answer["cards"])
    assert "someone-else" not in caplog.text and "theirs" not in caplog.text
    assert "other-patient" in caplog.text


def test_a_resource_of_the_wrong_type_for_its_query_is_excluded(client):
    stray = _now_retention("stray", f"Patient/{PID}")
    answer = _call(client, _request(_full_prefetch(EMPTY, conditions=_bundle(stray))))
    assert "cauda-equina" not in _topics(answer)
    assert _excluded(answer) == {"wrong-resource-type": 1}


def _fallback_request() -> dict:
    """No prefetch: everything comes from fhirServer."""
    return _request(fhirServer=BASE, fhirAuthorization={
        "access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "x",
        "subject": "s"})


def test_fallback_binds_what_the_server_answers(client):
    mine = _now_retention("mine", f"{BASE}/Patient/{PID}")
    theirs = _now_retention("theirs", "Patient/someone-else")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{BASE}/Patient/{PID}",
                 json={"resourceType": "Condition", "id": "x",
                       "subject": {"reference": f"Patient/{PID}"}})
        mock.add(responses.GET, f"{BASE}/Observation", json=_bundle(theirs))
        for kind in ("Condition", "Procedure", "DiagnosticReport", "ImagingStudy"):
            mock.add(responses.GET, f"{BASE}/{kind}", json=EMPTY)
        answer = _call(client, _fallback_request())
        assert "cauda-equina" not in _topics(answer)
        assert _excluded(answer) == {"other-patient": 1, "wrong-resource-type": 1}
        mock.replace(responses.GET, f"{BASE}/Observation", json=_bundle(mine))
        mock.replace(responses.GET, f"{BASE}/Patient/{PID}", json=PATIENT)
        answer = _call(client, _fallback_request())
    assert "cauda-equina" in _topics(answer)
    assert _excluded(answer) == {}


def test_the_ehrs_operation_outcomes_are_counted_and_logged_without_their_text(client, caplog):
    caplog.set_level(logging.INFO)
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "warning", "code": "processing",
         "diagnostics": f"Patient/{PID}: 3 Observations withheld"}]}
    observations = _bundle(_now_retention("mine", f"Patient/{PID}"))
    observations["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    answer = _call(client, _request(_full_prefetch(observations)))
    assert "cauda-equina" in _topics(answer)
    assert answer["extension"][EXT]["dataQuality"]["operationOutcomes"] == 1
    assert "warning/processing=1" in caplog.text
    assert "withheld" not in caplog.text
    clean = _call(client, _request(_full_prefetch(_bundle(_now_retention("m2", f"Patient/{PID}")))))
    assert "operationOutcomes" not in clean["extension"][EXT].get("dataQuality", {})


DRAFTED_MRI = "fixtures/requests/early-sciatica-order-select-mri.json"
EARLY_IMAGING = "early-lumbar-imaging"  # R4: lumbar imaging in the first 6 weeks, delete the draft


def _drafted_mri(**reference: object) -> tuple[dict, str]:
    """The order-select call of a drafted lumbar MRI 3 weeks into sciatica, the draft's
    ``subject`` replaced by ``reference`` (a member name and its value; none: no reference)."""
    body = fixtures.load_request(PROJECT_ROOT / DRAFTED_MRI, datetime.now(UTC))
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("subject", None)
    draft.update(reference)
    return body, f"{draft['resourceType']}/{draft['id']}"


def _order_select(client: FlaskClient, body: dict) -> dict:
    answer = client.post(service_paths(client)["order-select"], json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


@pytest.mark.parametrize("reference", [
    {"subject": {"reference": "Patient/early-sciatica"}},
    {"subject": {"reference": "https://ehr.example.org/fhir/Patient/early-sciatica"}},
    {"patient": {"reference": "Patient/early-sciatica"}},
    {},  # a draft being written may not name its patient yet: it is the context patient's
])
def test_a_draft_order_of_the_context_patient_is_rated_and_may_be_deleted(client, reference):
    body, ref = _drafted_mri(**reference)
    answer = _order_select(client, body)
    cards = [c for c in answer["cards"] if c["source"]["topic"]["code"] == EARLY_IMAGING]
    assert cards and ref in cards[0]["detail"]
    assert "skippedDraftOrders" not in answer["extension"][EXT]


@pytest.mark.parametrize("reference", [
    {"subject": {"reference": "Patient/someone-else"}},
    {"subject": {"reference": "https://ehr.example.org/fhir/Patient/someone-else"}},
    {"patient": {"reference": "Patient/someone-else"}},
])
def test_a_draft_order_of_another_patient_never_counts_and_is_named(client, reference):
    body, ref = _drafted_mri(**reference)
    answer = _order_select(client, body)
    assert EARLY_IMAGING not in _topics(answer)
    assert ref not in json.dumps(answer["cards"])
    assert "systemActions" not in answer
    assert answer["extension"][EXT]["skippedDraftOrders"] == ["context.draftOrders.entry[0]"]
