"""SEC-14: the access token only goes to an https FHIR base listed for the authenticated issuer."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.security import ClientIdentity, fhir_server_refusal

PROD = Settings(mode="production")
DEV = Settings(mode="development")
CLIENT = ClientIdentity(
    iss="https://ehr.example.test", tenant=None, fhir_servers=("https://fhir.example.test/r4",)
)


@pytest.mark.parametrize(
    "url",
    [
        "https://fhir.example.test/r4",
        "https://fhir.example.test/r4/",
        "https://FHIR.example.test:443/r4/Observation?patient=1&_count=50",
        "https://fhir.example.test/r4/Patient/sec-1",
    ],
)
def test_listed_https_base_and_paths_below_it_are_allowed(url: str) -> None:
    assert fhir_server_refusal(url, CLIENT, PROD) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://fhir.example.test/r4", "https"),
        ("https://attacker.example.test/r4", "not allowed"),
        ("https://fhir.example.test/r4-evil", "not allowed"),
        ("https://fhir.example.test/other", "not allowed"),
        ("https://fhir.example.test:8443/r4", "not allowed"),
        ("https://fhir.example.test.attacker.test/r4", "not allowed"),
        ("https://127.0.0.1/r4", "not allowed"),
        ("https://10.0.0.5/r4", "not allowed"),
        ("https://[::1]/r4", "not allowed"),
        ("https://169.254.169.254/latest", "not allowed"),
        ("https://fhir.example.test/r4/../admin", "dot segments"),
        ("https://fhir.example.test/r4/%2e%2e/admin", "dot segments"),
        ("https://user:pw@fhir.example.test/r4", "credentials"),
        ("file:///etc/passwd", "absolute http(s)"),
        ("https://fhir.example.test:99999/r4", "valid URL"),
        ("not a url", "absolute http(s)"),
    ],
)
def test_other_servers_are_refused_in_production(url: str, reason: str) -> None:
    refusal = fhir_server_refusal(url, CLIENT, PROD)
    assert refusal is not None and reason in refusal


def test_production_without_a_client_refuses_every_server() -> None:
    assert fhir_server_refusal("https://fhir.example.test/r4", None, PROD) is not None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8090/fhir", "http://localhost/fhir", "https://any.example.test/x"]
)
def test_development_allows_any_http_server(url: str) -> None:
    assert fhir_server_refusal(url, None, DEV) is None


def test_refusal_reason_never_contains_the_url_credentials() -> None:
    refusal = fhir_server_refusal("https://u:s3cr3t@fhir.example.test/r4", CLIENT, PROD)
    assert refusal is not None and "s3cr3t" not in refusal
