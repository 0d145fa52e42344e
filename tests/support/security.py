"""Real keys, a real JWK Set served over loopback HTTP, and signed tokens: the EHR side of the
security, fault, replica and hostile tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ruamel.yaml import YAML

from service.config import Settings

FIXTURES = Path(__file__).parents[1] / "security" / "fixtures"
ISSUER = "https://ehr.example.test"
TENANT = "hospital-a"
FHIR_BASE = "https://fhir.example.test/r4"
PUBLIC_BASE = "https://cds.example.test"
EC_KID = "ec-384-1"
RSA_KID = "rsa-384-1"


class JwksServer:
    """Serves ``document`` as JSON on 127.0.0.1 and counts the fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        # shutdown() waits for the serve loop's next poll: keep it short so close() is immediate.
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def public_jwk(key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    """The public half of ``key`` as a JWK with ``kid`` (and ``alg`` if given)."""
    algorithm = jwt.algorithms.ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else (
        jwt.algorithms.RSAAlgorithm
    )
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk["kid"] = kid
    if alg:
        jwk["alg"] = alg
    return jwk


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_server(ec_key, rsa_key) -> Iterator[JwksServer]:
    server = JwksServer()
    server.document = {"keys": [public_jwk(ec_key, EC_KID), public_jwk(rsa_key, RSA_KID, "RS384")]}
    yield server
    server.close()


def load_yaml_data(path: Path) -> Any:
    return YAML(typ="safe").load(path)


def write_yaml(path: Path, data: Any) -> Path:
    YAML().dump(data, path)
    return path


@pytest.fixture
def trust_file(tmp_path: Path, jwks_server: JwksServer) -> Path:
    """One trusted EHR whose keys come from the loopback JWK Set, one tenant, one FHIR base."""
    return write_yaml(tmp_path / "trusted-clients.yaml", {
        "jwks_refetch_interval_seconds": 30,
        "clients": [{
            "iss": ISSUER,
            "jku": jwks_server.url,
            "tenants": [TENANT],
            "fhir_servers": [FHIR_BASE],
        }],
    })


@pytest.fixture
def production_settings(tmp_path: Path, trust_file: Path) -> Settings:
    return Settings(
        mode="production",
        public_base_url=PUBLIC_BASE,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        demo_patients=False,
        trusted_clients_path=trust_file,
        audit_secret="security-tests-audit-secret-of-32-bytes",
        fhir_timeout_s=0.5,
        fhir_deadline_s=2.0,
    )


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token(ec_key, rsa_key, jwks_server) -> TokenFactory:
    """Sign a token like a well-behaved EHR would; keyword arguments override claims or headers.

    ``aud_path`` is appended to the public base URL; ``claims``/``headers`` entries set to None
    are removed.
    """

    def make(
        aud_path: str = "/cds-services",
        *,
        alg: str = "ES384",
        key: Any = None,
        claims: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        body = standard_claims(aud_path)
        head: dict[str, Any] = {
            "typ": "JWT",
            "kid": EC_KID if alg.startswith("ES") else RSA_KID,
            "jku": jwks_server.url,
        }
        body.update(claims or {})
        head.update(headers or {})
        body = {k: v for k, v in body.items() if v is not None}
        head = {k: v for k, v in head.items() if v is not None}
        if key is None:
            key = ec_key if alg.startswith("ES") else rsa_key
        return jwt.encode(body, key, algorithm=alg, headers=head)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A JWS built by hand, as an attacker would: HMAC-SHA256 with ``secret``, or unsigned if None.

    PyJWT refuses to produce these (it will not HMAC with a PEM key), which is the point.
    """
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def standard_claims(aud_path: str = "/cds-services") -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER, "aud": PUBLIC_BASE + aud_path, "exp": now + 300, "iat": now,
        "jti": str(uuid.uuid4()), "tenant": TENANT,
    }


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def serve_fhir_patient(mock: responses.RequestsMock, base: str = FHIR_BASE) -> None:
    """Answer the fallback's reads and searches for patient sec-1."""
    mock.get(f"{base}/Patient/sec-1", json=load_fixture("fhir-patient.json"))
    mock.get(re.compile(re.escape(base) + r"/[A-Za-z]+\?.*"), json=load_fixture("fhir-empty-searchset.json"))
