"""SEC-14 end to end: the EHR's access token goes only where the trust file allows."""

from __future__ import annotations

import pytest
import responses

from service.config import Settings
from tests.support.app import make_app
from tests.support.security import FHIR_BASE, TokenFactory, bearer, load_fixture, serve_fhir_patient

SERVICE = "/cds-services/spinehip-patient-view"
ACCESS_TOKEN = load_fixture("patient-view-fallback.json")["fhirAuthorization"]["access_token"]


@pytest.fixture
def client(production_settings: Settings):
    return make_app(production_settings).test_client()


def call(client, make_token: TokenFactory, fhir_server: str):
    body = load_fixture("patient-view-fallback.json")
    body["fhirServer"] = fhir_server
    return client.post(SERVICE, json=body, headers=bearer(make_token(SERVICE)))


def outbound(mock: responses.RequestsMock) -> list[str]:
    return [c.request.url for c in mock.calls]


def test_allowed_fhir_server_gets_the_token(client, make_token, fhir_mock) -> None:
    serve_fhir_patient(fhir_mock)
    response = call(client, make_token, FHIR_BASE)
    assert response.status_code == 200, response.get_json()
    assert fhir_mock.calls, "the fallback should have read from the FHIR server"
    for c in fhir_mock.calls:
        assert c.request.url.startswith(FHIR_BASE + "/")
        assert c.request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


@pytest.mark.parametrize(
    "fhir_server",
    [
        "https://attacker.example.test/r4",
        "http://fhir.example.test/r4",
        "https://127.0.0.1/r4",
        "https://fhir.example.test/other-base",
        "https://fhir.example.test.attacker.test/r4",
    ],
)
def test_other_fhir_server_gets_412_and_no_call(client, make_token, fhir_mock, fhir_server) -> None:
    serve_fhir_patient(fhir_mock, fhir_server.rstrip("/"))
    response = call(client, make_token, fhir_server)
    assert response.status_code == 412
    assert outbound(fhir_mock) == []
    assert ACCESS_TOKEN not in response.get_data(as_text=True)


def test_redirect_to_another_origin_is_not_followed(client, make_token, fhir_mock) -> None:
    serve_fhir_patient(fhir_mock)
    fhir_mock.replace(
        responses.GET, f"{FHIR_BASE}/Patient/sec-1",
        status=302, headers={"Location": "https://attacker.example.test/Patient/sec-1"},
    )
    fhir_mock.get("https://attacker.example.test/Patient/sec-1", json={"resourceType": "Patient"})
    call(client, make_token, FHIR_BASE)
    assert not [u for u in outbound(fhir_mock) if "attacker" in u]


def test_development_mode_allows_a_loopback_fhir_server(production_settings, fhir_mock) -> None:
    settings = Settings(
        **{**production_settings.__dict__, "mode": "development", "trusted_clients_path": None}
    )
    loopback = "http://127.0.0.1:8090/fhir"
    serve_fhir_patient(fhir_mock, loopback)
    body = load_fixture("patient-view-fallback.json")
    body["fhirServer"] = loopback
    response = make_app(settings).test_client().post(SERVICE, json=body)
    assert response.status_code == 200
    assert all(u.startswith(loopback) for u in outbound(fhir_mock)) and outbound(fhir_mock)
