"""SEC-03..13 through the real app in production mode: every bad token gets a bare 401.

Keys are generated per session, the JWK Set is served over loopback HTTP, tokens are really
signed; nothing about verification is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from service.config import Settings
from service.security.guard import UNAUTHORIZED_BODY
from tests.support.app import make_app
from tests.support.security import (
    EC_KID,
    ISSUER,
    PUBLIC_BASE,
    TokenFactory,
    bearer,
    hand_signed_token,
    load_fixture,
    load_yaml_data,
    public_jwk,
    standard_claims,
    write_yaml,
)

SERVICE = "/cds-services/spinehip-patient-view"
FEEDBACK = SERVICE + "/feedback"


@pytest.fixture
def client(production_settings: Settings) -> FlaskClient:
    return make_app(production_settings).test_client()


def discovery_status(client: FlaskClient, headers: dict[str, str] | None = None) -> int:
    return client.get("/cds-services", headers=headers or {}).status_code


def assert_bare_401(response: Any) -> None:
    """401 with the fixed minimal body: nothing of the token or the reason is echoed."""
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == UNAUTHORIZED_BODY


def test_valid_es384_token_is_accepted(client: FlaskClient, make_token: TokenFactory) -> None:
    assert discovery_status(client, bearer(make_token(alg="ES384"))) == 200


def test_valid_rs384_token_is_accepted(client: FlaskClient, make_token: TokenFactory) -> None:
    assert discovery_status(client, bearer(make_token(alg="RS384"))) == 200


def test_token_without_jku_header_uses_the_allowlisted_jku(client, make_token) -> None:
    assert discovery_status(client, bearer(make_token(headers={"jku": None}))) == 200


def test_array_aud_containing_the_url_is_accepted(client, make_token) -> None:
    aud = ["https://elsewhere.example.test/cds-services", PUBLIC_BASE + "/cds-services"]
    assert discovery_status(client, bearer(make_token(claims={"aud": aud}))) == 200


def test_service_call_is_checked_against_the_service_url(client, make_token) -> None:
    body = load_fixture("patient-view-prefetch.json")
    wrong = client.post(SERVICE, json=body, headers=bearer(make_token("/cds-services")))
    assert_bare_401(wrong)
    right = client.post(SERVICE, json=body, headers=bearer(make_token(SERVICE)))
    assert right.status_code == 200, right.get_data(as_text=True)
    assert isinstance(right.get_json()["cards"], list)


def test_feedback_call_needs_the_feedback_url_as_aud(client, make_token) -> None:
    body = load_fixture("feedback-accepted.json")
    assert_bare_401(client.post(FEEDBACK, json=body, headers=bearer(make_token(SERVICE))))
    accepted = client.post(FEEDBACK, json=body, headers=bearer(make_token(FEEDBACK)))
    assert accepted.status_code == 200


def test_accepted_token_sets_the_client_identity(production_settings, make_token) -> None:
    app = make_app(production_settings)
    seen: list[Any] = []

    @app.get("/cds-services/whoami")
    def whoami():
        from flask import g

        seen.append(g.cds_client)
        return {}

    app.test_client().get("/cds-services/whoami", headers=bearer(make_token("/cds-services/whoami")))
    assert [(c.iss, c.tenant, c.fhir_servers) for c in seen] == [
        (ISSUER, "hospital-a", ("https://fhir.example.test/r4",))
    ]


def _now() -> int:
    return int(time.time())


def _public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Each case builds the Authorization header from the fixtures it names.
REJECTED: dict[str, Callable[..., dict[str, str]]] = {
    "missing": lambda **_: {},
    "not bearer": lambda **_: {"Authorization": "Basic dXNlcjpwYXNz"},
    "empty bearer": lambda **_: {"Authorization": "Bearer "},
    "malformed": lambda **_: bearer("not-a.jwt"),
    "garbage segments": lambda **_: bearer("eyJhbGciOiJFUzM4NCJ9.%%%%.@@@@"),
    "expired": lambda make, **_: bearer(make(claims={"exp": _now() - 120, "iat": _now() - 420})),
    "iat in the future beyond skew": lambda make, **_: bearer(make(claims={"iat": _now() + 300})),
    "iat older than max token age": lambda make, **_: bearer(
        make(claims={"iat": _now() - 7300, "exp": _now() + 300})
    ),
    "wrong aud": lambda make, **_: bearer(make("/cds-services/other")),
    "aud of another host": lambda make, **_: bearer(
        make(claims={"aud": "https://other.example.test/cds-services"})
    ),
    "array aud without the url": lambda make, **_: bearer(
        make(claims={"aud": ["https://other.example.test/cds-services"]})
    ),
    "untrusted iss": lambda make, **_: bearer(make(claims={"iss": "https://intruder.example.test"})),
    "untrusted jku": lambda make, **_: bearer(
        make(headers={"jku": "http://127.0.0.1:9/jwks.json"})
    ),
    "unknown kid": lambda make, **_: bearer(make(headers={"kid": "never-published"})),
    "no kid": lambda make, **_: bearer(make(headers={"kid": None})),
    "typ not JWT": lambda make, **_: bearer(make(headers={"typ": "at+jwt"})),
    "alg not allowlisted (ES256)": lambda make, **_: bearer(
        make(alg="ES256", key=ec.generate_private_key(ec.SECP256R1()))
    ),
    "signed by another key": lambda make, **_: bearer(
        make(key=ec.generate_private_key(ec.SECP384R1()))
    ),
    "RS384 token naming the EC key": lambda make, **_: bearer(
        make(alg="RS384", headers={"kid": EC_KID})
    ),
    "alg none": lambda **_: bearer(hand_signed_token(
        {"alg": "none", "typ": "JWT", "kid": EC_KID}, standard_claims(), None
    )),
    "HS256 with a guessed secret": lambda **_: bearer(hand_signed_token(
        {"alg": "HS256", "typ": "JWT", "kid": EC_KID}, standard_claims(), b"secret"
    )),
    "HS256 keyed with the public key bytes": lambda ec_key, **_: bearer(hand_signed_token(
        {"alg": "HS256", "typ": "JWT", "kid": EC_KID}, standard_claims(), _public_pem(ec_key)
    )),
    "wrong tenant": lambda make, **_: bearer(make(claims={"tenant": "hospital-b"})),
    "missing tenant": lambda make, **_: bearer(make(claims={"tenant": None})),
    "missing jti": lambda make, **_: bearer(make(claims={"jti": None})),
    "missing exp": lambda make, **_: bearer(make(claims={"exp": None})),
    "missing iat": lambda make, **_: bearer(make(claims={"iat": None})),
    "missing aud": lambda make, **_: bearer(make(claims={"aud": None})),
}


@pytest.mark.parametrize("case", REJECTED)
def test_bad_token_gets_a_bare_401(case: str, client, make_token, ec_key) -> None:
    headers = REJECTED[case](make=make_token, ec_key=ec_key)
    response = client.get("/cds-services", headers=headers)
    assert_bare_401(response)


def test_replayed_jti_is_refused(client, make_token) -> None:
    headers = bearer(make_token())
    assert discovery_status(client, headers) == 200
    assert_bare_401(client.get("/cds-services", headers=headers))


def test_unknown_kid_is_refused_and_does_not_flood_the_key_server(client, make_token, jwks_server) -> None:
    assert_bare_401(client.get("/cds-services", headers=bearer(make_token(headers={"kid": "x1"}))))
    assert jwks_server.hits == 1
    assert discovery_status(client, bearer(make_token())) == 200
    # Within the refetch interval another unknown kid must not reach the client's key server.
    assert_bare_401(client.get("/cds-services", headers=bearer(make_token(headers={"kid": "x2"}))))
    assert jwks_server.hits == 1


def test_unknown_kid_refetches_once_so_a_rotated_key_works(
    production_settings, make_token, jwks_server, tmp_path
) -> None:
    trust = load_yaml_data(production_settings.trusted_clients_path)
    trust["jwks_refetch_interval_seconds"] = 0
    path = write_yaml(tmp_path / "no-interval.yaml", trust)
    client = make_app(Settings(**{**production_settings.__dict__, "trusted_clients_path": path}))
    client = client.test_client()
    assert discovery_status(client, bearer(make_token())) == 200
    assert jwks_server.hits == 1
    assert_bare_401(client.get("/cds-services", headers=bearer(make_token(headers={"kid": "x1"}))))
    assert jwks_server.hits == 2
    new_key = ec.generate_private_key(ec.SECP384R1())
    jwks_server.document = {"keys": [public_jwk(new_key, "ec-384-2")]}
    token = make_token(key=new_key, headers={"kid": "ec-384-2"})
    assert discovery_status(client, bearer(token)) == 200
    assert jwks_server.hits == 3


def test_preflight_and_operations_endpoints_need_no_token(client) -> None:
    preflight = client.options(
        SERVICE,
        headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    )
    assert 200 <= preflight.status_code < 300
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_401_still_carries_cors_headers(client) -> None:
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" in response.headers


def test_aud_is_the_request_url_without_a_public_base_in_development(production_settings, make_token) -> None:
    settings = Settings(**{**production_settings.__dict__, "public_base_url": None, "mode": "development"})
    client = make_app(settings).test_client()
    own = make_token(claims={"aud": "http://localhost/cds-services"})
    assert discovery_status(client, bearer(own)) == 200
    assert_bare_401(client.get("/cds-services", headers=bearer(make_token())))


def test_production_without_public_base_url_refuses_to_start(production_settings) -> None:
    """Otherwise aud would be checked against the Host header the caller chose."""
    settings = Settings(**{**production_settings.__dict__, "public_base_url": None})
    with pytest.raises(ValueError, match="SPINEHIP_PUBLIC_BASE_URL"):
        make_app(settings)


def test_production_without_trust_file_refuses_to_start(production_settings) -> None:
    settings = Settings(**{**production_settings.__dict__, "trusted_clients_path": None})
    with pytest.raises(ValueError, match="SPINEHIP_TRUSTED_CLIENTS"):
        make_app(settings)


def test_development_accepts_no_token_but_checks_a_present_one(production_settings, make_token) -> None:
    settings = Settings(**{**production_settings.__dict__, "mode": "development"})
    client = make_app(settings).test_client()
    assert discovery_status(client) == 200
    assert discovery_status(client, bearer(make_token())) == 200
    assert_bare_401(client.get("/cds-services", headers=bearer(make_token("/wrong"))))


def test_development_without_trust_file_ignores_tokens(production_settings) -> None:
    settings = Settings(
        **{**production_settings.__dict__, "mode": "development", "trusted_clients_path": None}
    )
    client = make_app(settings).test_client()
    assert discovery_status(client, {"Authorization": "Bearer whatever"}) == 200
