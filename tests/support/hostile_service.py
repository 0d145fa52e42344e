"""One production ``spinehip serve`` (two workers, PostgreSQL, client JWTs) and the hostile FHIR
servers it is allowed to read from, all on loopback.

The trust file lists every hostile server as a FHIR base of the one trusted EHR, so each request
passes the SEC-14 binding and really reaches the server it names: what is tested is what the
service does with the answer. Limits are set low (a 2.5 s deadline, 1 MiB per FHIR answer, 4 MiB
per hook call, 1 MiB per request body) so each hostile case is over in seconds.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from service import fixtures
from service.config import PROJECT_ROOT
from tests.support import hostile_fhir
from tests.support.hostile_fhir import HostileFhirServer
from tests.support.processes import RunningServer, free_port, running, spinehip_env, start_spinehip
from tests.support.security import (
    EC_KID,
    ISSUER,
    TENANT,
    JwksServer,
    bearer,
    load_fixture,
    public_jwk,
    standard_claims,
    write_yaml,
)
from tests.support.stores import fresh_pg_database

PATIENT_VIEW = "spinehip-patient-view"
#: A demo patient with a current cauda equina diagnosis: the healthy server's data gives a critical card.
RED_FLAG_PATIENT = "ces-condition-snomed"
DEADLINE_S = 2.5
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024
MAX_BODY_BYTES = 1024 * 1024



def behaviours() -> dict[str, hostile_fhir.Behaviour]:
    """One hostile FHIR server per name, and a healthy one holding the red-flag patient."""
    red_flag = fixtures.demo_resources(PROJECT_ROOT / "fixtures", RED_FLAG_PATIENT, datetime.now(UTC))
    return {
        "healthy": hostile_fhir.healthy(red_flag or []),
        "drip-body": hostile_fhir.drip(from_status_line=False),
        "drip-status-line": hostile_fhir.drip(from_status_line=True),
        "gzip-bomb": hostile_fhir.compression_bomb(16 * MAX_RESPONSE_BYTES, "gzip"),
        "deflate-bomb": hostile_fhir.compression_bomb(16 * MAX_RESPONSE_BYTES, "deflate"),
        "huge-with-length": hostile_fhir.huge(16 * MAX_RESPONSE_BYTES, chunked=False),
        "huge-chunked": hostile_fhir.huge(16 * MAX_RESPONSE_BYTES, chunked=True),
        "bulky": hostile_fhir.bulky(MAX_RESPONSE_BYTES * 9 // 10),
        "random-paging": hostile_fhir.random_paging_links(),
    }


@dataclass(frozen=True)
class HostileSetup:
    """The running service, the servers it may read from, and a well-behaved EHR to call it with."""

    service: RunningServer
    servers: dict[str, HostileFhirServer]
    refused_base: str
    signing_key: ec.EllipticCurvePrivateKey
    jwks_url: str

    def token(self, path: str) -> str:
        claims = {**standard_claims(), "aud": self.service.base_url + path}
        headers = {"typ": "JWT", "kid": EC_KID, "jku": self.jwks_url}
        return jwt.encode(claims, self.signing_key, algorithm="ES384", headers=headers)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        """POST ``body`` to ``path`` with a fresh, valid client JWT."""
        return requests.post(
            self.service.base_url + path, json=body, headers=bearer(self.token(path)), timeout=60, **kwargs
        )

    def hook_call(self, fhir_server: str, patient_id: str = RED_FLAG_PATIENT) -> requests.Response:
        """A patient-view call without prefetch: everything comes from ``fhir_server`` (a name or a URL)."""
        body = copy.deepcopy(load_fixture("patient-view-fallback.json"))
        body["hookInstance"] = str(uuid.uuid4())
        body["context"]["patientId"] = patient_id
        known = self.servers.get(fhir_server)
        body["fhirServer"] = known.base_url if known else fhir_server
        return self.post(f"/cds-services/{PATIENT_VIEW}", body)


def card_topics(response: requests.Response) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response.json()["cards"]]


def diagnostics(response: requests.Response) -> str:
    """Every issue's diagnostics of an OperationOutcome answer, joined."""
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return " | ".join(issue.get("diagnostics", "") for issue in body["issue"])


def issue_fields(response: requests.Response) -> list[str]:
    """The member each issue of an OperationOutcome answer names."""
    return [expression for issue in response.json()["issue"] for expression in issue.get("expression", [])]


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSetup]:
    work = tmp_path_factory.mktemp("hostile")
    certificate = hostile_fhir.loopback_certificate(work)
    servers = {name: HostileFhirServer(behaviour, certificate) for name, behaviour in behaviours().items()}
    refused_base = f"https://127.0.0.1:{free_port()}/fhir"  # nothing listens there
    signing_key = ec.generate_private_key(ec.SECP384R1())
    jwks = JwksServer()
    jwks.document = {"keys": [public_jwk(signing_key, EC_KID)]}
    trust_file = write_yaml(work / "trusted-clients.yaml", {"clients": [{
        "iss": ISSUER, "jku": jwks.url, "tenants": [TENANT],
        "fhir_servers": [s.base_url for s in servers.values()] + [refused_base],
    }]})
    metrics_dir = work / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    try:
        with fresh_pg_database("hostile") as database_url:
            env = spinehip_env(
                SPINEHIP_MODE="production",
                SPINEHIP_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                DATABASE_URL=database_url,
                SPINEHIP_TRUSTED_CLIENTS=str(trust_file),
                SPINEHIP_AUDIT_SECRET=uuid.uuid4().hex + uuid.uuid4().hex,
                SPINEHIP_FHIR_DEADLINE=str(DEADLINE_S),
                SPINEHIP_FHIR_TIMEOUT="1.5",
                SPINEHIP_FHIR_MAX_RESPONSE_BYTES=str(MAX_RESPONSE_BYTES),
                SPINEHIP_FHIR_MAX_TOTAL_BYTES=str(MAX_TOTAL_BYTES),
                SPINEHIP_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                REQUESTS_CA_BUNDLE=str(certificate[0]),
                NO_PROXY="127.0.0.1,localhost",
            )
            env.pop("HTTPS_PROXY", None), env.pop("https_proxy", None)
            server = start_spinehip(env, work, workers=2, port=port, name="spinehip-production")
            with running(server) as service:
                yield HostileSetup(service, servers, refused_base, signing_key, jwks.url)
    finally:
        jwks.close()
        for hostile_server in servers.values():
            hostile_server.close()

