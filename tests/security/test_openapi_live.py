"""openapi.yaml against a real ``spinehip serve`` process (gunicorn), driven by schemathesis.

Production mode with a trust file whose only client may use no FHIR server at all: every
generated fhirServer is refused before any connection, so the fuzzing never leaves loopback.
Each generated request carries a freshly signed JWT for the exact URL it calls.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from tests.support.processes import free_port, running, spinehip_env, start_spinehip
from tests.support.security import EC_KID, ISSUER, JwksServer, load_fixture, public_jwk, write_yaml

PROJECT = Path(__file__).parents[2]
OPENAPI = PROJECT / "openapi.yaml"
SERVICE_ID = "spinehip-patient-view"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@dataclass
class LiveServer:
    url: str
    log: Path
    key: ec.EllipticCurvePrivateKey

    def token(self, path: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": self.url + path, "exp": now + 300, "iat": now,
                  "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": EC_KID})


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    key = ec.generate_private_key(ec.SECP384R1())
    jwks = JwksServer()
    jwks.document = {"keys": [public_jwk(key, EC_KID)]}
    trust = write_yaml(tmp / "trusted-clients.yaml",
                       {"clients": [{"iss": ISSUER, "jku": jwks.url, "fhir_servers": []}]})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = spinehip_env(SPINEHIP_MODE="production", SPINEHIP_TRUSTED_CLIENTS=str(trust),
                       SPINEHIP_PUBLIC_BASE_URL=url, DATABASE_URL=f"sqlite:///{tmp / 'store.db'}",
                       SPINEHIP_DEMO_PATIENTS="0", SPINEHIP_AUDIT_SECRET="live-test-audit-secret-of-32-bytes")
    try:
        with running(start_spinehip(env, tmp, port=port, name="server")) as served:
            yield LiveServer(url, served.log_path, key)
    finally:
        jwks.close()


OPERATIONS = [result.ok() for result in schemathesis.openapi.from_path(OPENAPI).get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_operation_conforms_to_openapi(live_server: LiveServer, operation) -> None:
    @settings(max_examples=100, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), real_service=st.booleans())
    def run(case, real_service: bool) -> None:
        if real_service and "id" in (case.path_parameters or {}):
            # Random ids only ever meet the 404; half the cases call the real service.
            case.path_parameters = {"id": SERVICE_ID}
        headers = {"Authorization": f"Bearer {live_server.token(case.formatted_path)}"}
        response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)
        statuses.add(response.status_code)

    statuses: set[int] = set()
    run()
    # The signed tokens must get most requests past authentication, or the run tested little.
    assert statuses - {401}, statuses


def test_live_server_refuses_bad_tokens_and_logs_no_secret(live_server: LiveServer) -> None:
    body = load_fixture("patient-view-fallback.json")
    access_token = body["fhirAuthorization"]["access_token"]
    path = "/cds-services/spinehip-patient-view"
    good = live_server.token(path)
    url = live_server.url + path
    assert requests.post(url, json=body, headers={"Authorization": f"Bearer {good}"}).status_code == 412
    replay = requests.post(url, json=body, headers={"Authorization": f"Bearer {good}"})
    assert replay.status_code == 401
    forged = jwt.encode({"iss": ISSUER, "aud": url}, "s" * 32, algorithm="HS256")
    assert requests.post(url, json=body, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    time.sleep(0.5)  # let gunicorn flush its log
    text = live_server.log.read_text()
    for secret in (access_token, good, forged, good.split(".")[2]):
        assert secret not in text


SERVICE_OF_HOOK = {"patient-view": SERVICE_ID, "encounter-start": "spinehip-encounter-start",
                   "order-select": "spinehip-order-select", "order-sign": "spinehip-order-sign"}
ACCEPTED_BODIES = [op for op in OPERATIONS
                   if op.method.upper() == "POST" and op.path.startswith("/cds-services/")]


def arranged(body: Any) -> str:
    """What no schema can state, arranged as a real EHR would: the service called is the one of
    the body's hook, and the selections name draft orders the body carries. Returns the id."""
    hook = body.get("hook")
    context = body.get("context")
    if hook == "order-select" and isinstance(context, dict):
        drafts = context["draftOrders"].get("entry") or []
        context["draftOrders"]["entry"] = [*drafts, {"resource": {
            "resourceType": "ServiceRequest", "id": "arranged-draft"}}]
        context["selections"] = ["ServiceRequest/arranged-draft"]
    return SERVICE_OF_HOOK.get(hook, SERVICE_ID)


@pytest.mark.parametrize("operation", ACCEPTED_BODIES, ids=lambda op: op.label)
def test_every_schema_valid_body_is_accepted(live_server: LiveServer, operation) -> None:
    """Positive data only: whatever body the request schema allows, the service takes (no 400),
    never fails (no 5xx), and answers as declared. A short, derandomized run."""
    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def run(case) -> None:
        service_id = arranged(case.body) if isinstance(case.body,
                                                       dict) and "hook" in case.body else SERVICE_ID
        case.path_parameters = {"id": service_id}
        headers = {"Authorization": f"Bearer {live_server.token(case.formatted_path)}"}
        response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)
        assert response.status_code != 400, (case.body, response.text[:500])
        statuses.add(response.status_code)

    statuses: set[int] = set()
    run()
    assert statuses - {401}, statuses
