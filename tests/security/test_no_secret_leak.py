"""No access token, JWT or fhirAuthorization in any log line or response body, on any path.

The whole run logs at DEBUG through the root logger, so library loggers (urllib3, requests,
werkzeug) are captured too; the search covers messages, arguments and exception text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from tests.support.app import make_app
from tests.support.security import FHIR_BASE, bearer, load_fixture, serve_fhir_patient

SERVICE = "/cds-services/spinehip-patient-view"
FEEDBACK = SERVICE + "/feedback"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[Collect]:
    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_full_run_leaks_no_secret(production_settings, make_token, fhir_mock, all_logs, capsys) -> None:
    app = make_app(production_settings)
    client = app.test_client()
    request_body = load_fixture("patient-view-fallback.json")
    access_token = request_body["fhirAuthorization"]["access_token"]
    tokens: list[str] = []
    bodies: list[str] = []

    def send(method: str, path: str, aud: str | None = None, **kwargs) -> int:
        token = make_token(aud or path)
        tokens.append(token)
        response = client.open(path, method=method, headers=bearer(token), **kwargs)
        bodies.append(response.get_data(as_text=True))
        return response.status_code

    serve_fhir_patient(fhir_mock)
    assert send("GET", "/cds-services") == 200
    assert send("POST", SERVICE, json=request_body) == 200
    assert any(c.request.headers.get("Authorization") for c in fhir_mock.calls)
    assert send("POST", FEEDBACK, json=load_fixture("feedback-accepted.json")) == 200

    # Error paths: wrong audience, disallowed FHIR server, FHIR server failing in three ways,
    # a body that is not JSON but contains the token, an invalid fhirAuthorization.
    assert send("POST", SERVICE, aud="/cds-services", json=request_body) == 401
    assert send("POST", SERVICE, json={**request_body, "fhirServer": "https://evil.example.test"}) == 412
    fhir_mock.replace("GET", f"{FHIR_BASE}/Patient/sec-1", status=401, json={"error": access_token})
    assert send("POST", SERVICE, json=request_body) == 412
    fhir_mock.replace("GET", f"{FHIR_BASE}/Patient/sec-1", status=500, body=f"boom {access_token}")
    assert send("POST", SERVICE, json=request_body) == 412
    fhir_mock.replace("GET", f"{FHIR_BASE}/Patient/sec-1", body=requests.ConnectionError(access_token))
    assert send("POST", SERVICE, json=request_body) == 412
    not_json = f'{{"fhirAuthorization": "{access_token}"'
    assert send("POST", SERVICE, data=not_json, content_type="application/json") == 400
    broken = {**request_body, "fhirAuthorization": {**request_body["fhirAuthorization"], "token_type": 7}}
    assert send("POST", SERVICE, json=broken) == 400

    captured = capsys.readouterr()
    everything = "\n".join([*all_logs.lines, *bodies, captured.out, captured.err])
    assert len(all_logs.lines) > 5, "the run should have logged something to search"
    secrets = [access_token, *tokens, *(t.split(".")[2] for t in tokens)]
    leaked = [s[:12] + "..." for s in secrets if s in everything]
    assert leaked == []
    assert "eyJ" not in everything
