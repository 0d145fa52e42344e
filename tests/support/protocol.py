"""A service built by the real app factory, with the FHIR side replaced by recorded replies."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from service.config import Settings
from tests.support.app import make_app

DATA = Path(__file__).parents[1] / "protocol" / "data"
FHIR = "https://fhir.example.org/r4"
TOKEN = "proto-access-token-5f2e"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        journal_dir=tmp_path / "journal",
        db_timeout_s=10.0,  # a loaded test machine must not turn a slow write into a fault
        demo_patients=False,
        fhir_timeout_s=0.5,
        fhir_deadline_s=2.0,
        fhir_page_cap=5,
    )


@pytest.fixture
def app(settings: Settings):
    return make_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def fhir_mock(request: pytest.FixtureRequest) -> Iterator[responses.RequestsMock]:
    """Every outbound HTTP call is intercepted: one that no test registered fails the test. Only
    the loopback JWK Set passes through, for a test that has one (``jwks_server``)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        if "jwks_server" in request.fixturenames:
            mock.add_passthru(request.getfixturevalue("jwks_server").url)
        yield mock


@pytest.fixture
def patient_view() -> dict:
    return copy.deepcopy(load("patient-view.json"))


@pytest.fixture
def order_select() -> dict:
    return copy.deepcopy(load("order-select.json"))
