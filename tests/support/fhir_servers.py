"""Fixtures that give the integration tests a real FHIR R4 server.

``fhir_server``: the local server (sekmet-fhir), started once per session on 127.0.0.1 with a
temporary data directory and a random bearer token, stopped after the session. When it cannot be
installed or started the tests that need it are skipped with the reason, except in CI (CI=true),
where that is a failure: CI must prove the fallback against a real server.

``sandbox_fhir``: a public FHIR R4 server named by ``FHIR_SANDBOX_URL`` (token, if any, in
``FHIR_SANDBOX_TOKEN``); the tests that use it are marked ``sandbox`` and skip without it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import requests

# The server helper lives beside the integration tests, which (and the benchmarks) import it by
# its bare name from that directory, as pytest puts it on the path: one module object for all.
INTEGRATION = Path(__file__).parents[1] / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

from fhir_server_process import (  # noqa: E402
    FhirEndpoint,
    FhirServerUnavailable,
    LocalFhirServer,
    ensure_installed,
    fhir_venv,
    start_server,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
SANDBOX_URL_ENV = "FHIR_SANDBOX_URL"
SANDBOX_TOKEN_ENV = "FHIR_SANDBOX_TOKEN"


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where a missing FHIR server must not pass unnoticed."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the local FHIR server is required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fhir_server_executable() -> Path:
    try:
        return ensure_installed(fhir_venv())
    except FhirServerUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def fhir_server(
    fhir_server_executable: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFhirServer]:
    try:
        server = start_server(fhir_server_executable, tmp_path_factory.mktemp("fhir-server"))
    except FhirServerUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture
def spare_fhir_server(
    fhir_server_executable: Path, tmp_path: Path
) -> Iterator[LocalFhirServer]:
    """A server of the test's own, for tests that stop or freeze it."""
    try:
        server = start_server(fhir_server_executable, tmp_path / "fhir-server")
    except FhirServerUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sandbox_fhir() -> FhirEndpoint:
    url = os.environ.get(SANDBOX_URL_ENV, "").strip().rstrip("/")
    if not url:
        pytest.skip(f"{SANDBOX_URL_ENV} is not set: no public FHIR sandbox to run against")
    try:
        requests.get(f"{url}/metadata", headers={"Accept": "application/fhir+json"}, timeout=20)
    except requests.RequestException as exc:
        pytest.skip(f"{SANDBOX_URL_ENV}={url} cannot be reached ({type(exc).__name__})")
    return FhirEndpoint(url, os.environ.get(SANDBOX_TOKEN_ENV) or None)


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("local", marks=pytest.mark.fhirserver),
        pytest.param("sandbox", marks=pytest.mark.sandbox),
    ],
)
def fhir_endpoint(request: pytest.FixtureRequest) -> FhirEndpoint:
    """Each real server the suite runs against: the local one, and the sandbox when named."""
    if request.param == "sandbox":
        return request.getfixturevalue("sandbox_fhir")
    server: LocalFhirServer = request.getfixturevalue("fhir_server")
    return FhirEndpoint(server.base_url, server.token)
