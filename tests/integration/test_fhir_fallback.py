"""The FHIR fallback, end to end against a real FHIR server.

Every clinical fixture is loaded into the server (with a per-run id suffix, so neither a shared
sandbox nor the demo patients can stand in for it). Then each fixture request is sent three ways:
with its full prefetch, with none, and with part of it, ``fhirServer`` pointing at the server and
``fhirAuthorization`` carrying its token. The fallback must not change a single card.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir_server_process import FhirEndpoint, LocalFhirServer
from flask.testing import FlaskClient
from hook_calls import (
    card_signatures,
    service_paths,
    service_settings,
    with_fhir_fallback,
    with_suffixed_ids,
)
from ruamel.yaml import YAML

from service.config import PROJECT_ROOT
from service.fixtures import load_bundle, load_request
from service.fixtures_load import load_fixtures, reference_targets
from tests.support.app import make_app
from tests.support.expected_cases import FixtureCase, load_cases

FIXTURES = PROJECT_ROOT / "fixtures"
CASES = load_cases(FIXTURES)
SMALL_PAGE = 2


@dataclass(frozen=True)
class LoadedFixtures:
    """The clinical fixtures as loaded into one server: where, with which suffix, rendered when."""

    endpoint: FhirEndpoint
    suffix: str
    now: datetime

    def requests(self, case: FixtureCase) -> tuple[dict, dict]:
        """(full-prefetch request with the fixture's ids, the same request with the server's ids)."""
        full = load_request(case.request, self.now)
        targets = reference_targets(load_bundle(case.patient, self.now), suffix=self.suffix)
        return full, with_suffixed_ids(full, targets)


@pytest.fixture(scope="session")
def loaded(fhir_endpoint: FhirEndpoint) -> LoadedFixtures:
    now = datetime.now(UTC)
    suffix = f"t{secrets.token_hex(3)}"
    load_fixtures(
        fhir_endpoint.base_url, token=fhir_endpoint.token, fixtures_dir=FIXTURES, suffix=suffix, now=now
    )
    return LoadedFixtures(fhir_endpoint, suffix, now)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    app = make_app(service_settings(tmp_path_factory.mktemp("service")))
    yield app.test_client()


def _small_page_hooks(target: Path) -> Path:
    """The bundled hook definitions with ``_count`` on every search, so results span pages."""
    yaml = YAML()
    target.mkdir()
    for source in sorted(Path(PROJECT_ROOT, "hooks").glob("*.yaml")):
        data = yaml.load(source)
        for key, template in data.get("prefetch", {}).items():
            if "?" in template:
                base = re.sub(r"&_count=\d+", "", template)
                data["prefetch"][key] = f"{base}&_count={SMALL_PAGE}"
        with (target / source.name).open("w") as out:
            yaml.dump(data, out)
    return target


@pytest.fixture(scope="module")
def small_page_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    tmp = tmp_path_factory.mktemp("small-pages")
    app = make_app(service_settings(tmp, hooks_dir=_small_page_hooks(tmp / "hooks")))
    yield app.test_client()


def _call(client: FlaskClient, body: dict) -> dict:
    response = client.post(service_paths(client)[body["hook"]], json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _partial_keys(full: dict, index: int) -> list[str]:
    """A different part of the prefetch for each case, so every key is left out somewhere."""
    keys = sorted(full.get("prefetch") or {})
    return [k for i, k in enumerate(keys) if (i + index) % 3 != 0]


CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_no_prefetch_gives_the_cards_of_full_prefetch(
    case: FixtureCase, loaded: LoadedFixtures, client: FlaskClient
) -> None:
    full, on_server = loaded.requests(case)
    fallback = with_fhir_fallback(
        on_server, fhir_server=loaded.endpoint.base_url, token=loaded.endpoint.token
    )
    assert "prefetch" not in fallback
    assert card_signatures(_call(client, fallback)) == card_signatures(_call(client, full))


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_partial_prefetch_gives_the_cards_of_full_prefetch(
    case: FixtureCase, loaded: LoadedFixtures, client: FlaskClient
) -> None:
    full, on_server = loaded.requests(case)
    keep = _partial_keys(full, CASES.index(case))
    fallback = with_fhir_fallback(
        on_server, fhir_server=loaded.endpoint.base_url, token=loaded.endpoint.token, keep_prefetch=keep
    )
    assert 0 < len(fallback["prefetch"]) < len(full["prefetch"])
    assert card_signatures(_call(client, fallback)) == card_signatures(_call(client, full))


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_results_spread_over_small_pages_give_the_cards_of_full_prefetch(
    case: FixtureCase, loaded: LoadedFixtures, small_page_client: FlaskClient
) -> None:
    full, on_server = loaded.requests(case)
    fallback = with_fhir_fallback(
        on_server, fhir_server=loaded.endpoint.base_url, token=loaded.endpoint.token
    )
    expected = card_signatures(_call(small_page_client, full))
    assert card_signatures(_call(small_page_client, fallback)) == expected


def test_small_pages_really_need_the_next_links(
    loaded: LoadedFixtures, tmp_path: Path
) -> None:
    """With one page allowed, a patient with more findings than a page holds cannot be answered:
    so the small-page runs above did follow next links."""
    case = max(CASES, key=lambda c: len(load_request(c.request, loaded.now)["prefetch"]
                                        .get("observations", {}).get("entry", [])))
    full, on_server = loaded.requests(case)
    assert len(full["prefetch"]["observations"]["entry"]) > SMALL_PAGE
    app = make_app(service_settings(
        tmp_path, hooks_dir=_small_page_hooks(tmp_path / "hooks"), fhir_page_cap=1
    ))
    client = app.test_client()
    fallback = with_fhir_fallback(
        on_server, fhir_server=loaded.endpoint.base_url, token=loaded.endpoint.token
    )
    response = client.post(service_paths(client)[fallback["hook"]], json=fallback)
    assert response.status_code == 412
    assert "page" in response.get_data(as_text=True)


def test_every_fixture_case_is_exercised() -> None:
    """The suite above runs on the real fixtures, not on an empty list."""
    assert len(CASES) >= 40
    assert {c.request.stem for c in CASES} >= {"s05-injection-relief-75", "s08-ces-with-hip-oa"}


# --------------------------------------------------------------------------- failures: 412, fast


def _outcome_412(response) -> dict:
    assert response.status_code == 412, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(i["severity"] in ("error", "fatal") for i in body["issue"])
    return body


@pytest.mark.fhirserver
def test_wrong_token_is_412_with_an_operation_outcome(
    fhir_server: LocalFhirServer, tmp_path: Path
) -> None:
    request = load_request(CASES[0].request, datetime.now(UTC))
    wrong = "wrong-" + secrets.token_hex(8)
    client = make_app(service_settings(tmp_path)).test_client()
    body = with_fhir_fallback(request, fhir_server=fhir_server.base_url, token=wrong)
    response = client.post(service_paths(client)[body["hook"]], json=body)
    outcome = _outcome_412(response)
    assert "401" in str(outcome) or "token" in str(outcome)
    assert wrong not in response.get_data(as_text=True)


def _time_call(client: FlaskClient, body: dict):
    started = time.monotonic()
    response = client.post(service_paths(client)[body["hook"]], json=body)
    return response, time.monotonic() - started


@pytest.mark.fhirserver
@pytest.mark.parametrize("failure", ["stopped", "frozen"])
def test_unavailable_server_is_412_within_the_deadline(
    failure: str, spare_fhir_server: LocalFhirServer, tmp_path: Path
) -> None:
    """A dead server refuses connections; a frozen one accepts them and never answers."""
    server = spare_fhir_server
    request = load_request(CASES[0].request, datetime.now(UTC))
    body = with_fhir_fallback(request, fhir_server=server.base_url, token=server.token)
    deadline_s = 2.0
    client = make_app(
        service_settings(tmp_path, fhir_timeout_s=1.0, fhir_deadline_s=deadline_s)
    ).test_client()
    service_paths(client)  # warm: discovery is not what is measured
    if failure == "stopped":
        server.stop()
    else:
        server.suspend()
    response, elapsed = _time_call(client, body)
    _outcome_412(response)
    # bounded by the deadline (with room for a loaded machine), not by the 300 s test timeout
    assert elapsed < deadline_s + 5
