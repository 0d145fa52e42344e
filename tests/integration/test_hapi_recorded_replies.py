"""The fallback reads replies in the exact shape a HAPI FHIR R4 server gives them, offline.

The replies in tests/recorded/hapi-r4/ carry what HAPI adds and the local server does not:
``_getpages`` paging links on the base URL, ``fullUrl`` and ``meta.source`` on every entry,
``total`` on the first page only, an empty searchset without ``entry``, and a search-mode
``outcome`` entry among the matches. They are replayed through ``responses``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from hook_calls import card_signatures, service_paths, service_settings, with_fhir_fallback
from responses import matchers
from ruamel.yaml import YAML

from service.fixtures import render
from tests.support.app import make_app
from tests.support.fixture_requests import build_request

RECORDED = Path(__file__).resolve().parents[1] / "recorded" / "hapi-r4"
MANIFEST = YAML(typ="safe").load(RECORDED / "replies.yaml")
BASE: str = MANIFEST["base"]
PATIENT: str = MANIFEST["patient"]
TOKEN = "recorded-hapi-token"
# The recorded patient is the hip-injection case of the clinical reference (sample patient 5):
# a completed hip injection with 8/10 pain before and 2/10 after, i.e. 75 % relief (rule R8).
# Its post-injection score is on the last Observation page.
EXPECTED = [("injection-confirms-hip", "info", ())]


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


def _reply(name: str, now: datetime) -> dict:
    return render(json.loads((RECORDED / name).read_text()), now, source=name)


def _is_page(url: str) -> bool:
    return "_getpages=" in url


def _register(mock: responses.RequestsMock, now: datetime, *, only_pages: bool = False) -> None:
    bearer = matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})
    for reply in MANIFEST["replies"]:
        if only_pages and not _is_page(reply["url"]):
            continue
        mock.add(responses.GET, reply["url"], json=_reply(reply["file"], now), match=[bearer])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    yield make_app(service_settings(tmp_path)).test_client()


def _recorded_resources(now: datetime) -> list[dict]:
    """Every resource the replies hold as data (search-mode match, and the read Patient)."""
    out = []
    for reply in MANIFEST["replies"]:
        body = _reply(reply["file"], now)
        if body["resourceType"] != "Bundle":
            out.append(body)
            continue
        out += [e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]
    return out


def _full_prefetch_request(now: datetime) -> dict:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in _recorded_resources(now)]}
    return build_request(bundle, hook="patient-view", prefetch_keys=None, patient_id=PATIENT)


def _post(client: FlaskClient, body: dict):
    return client.post(service_paths(client)[body["hook"]], json=body)


def test_recorded_replies_hold_what_makes_them_hapi_shaped(now: datetime) -> None:
    """Guards the replay below against replies edited out of HAPI's shape."""
    first = _reply("observations-page-1.json", now)
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["next"].startswith(f"{BASE}?_getpages=")
    assert "total" in first and "total" not in _reply("observations-page-2.json", now)
    assert {e["search"]["mode"] for e in first["entry"]} == {"match", "outcome"}
    assert all(e["fullUrl"].startswith(f"{BASE}/") for e in first["entry"] if "fullUrl" in e)
    assert "entry" not in _reply("imaging-studies.json", now)


def test_paged_hapi_replies_with_an_outcome_entry_give_the_cards_of_full_prefetch(
    client: FlaskClient, now: datetime
) -> None:
    full = _recorded_resources(now)
    assert not any(r["resourceType"] == "OperationOutcome" for r in full)
    expected = card_signatures(_post(client, _full_prefetch_request(now)).get_json())
    assert expected == EXPECTED

    request = with_fhir_fallback(_full_prefetch_request(now), fhir_server=BASE, token=TOKEN)
    # every reply must be asked for, both _getpages pages included, each with the bearer token
    with responses.RequestsMock(assert_all_requests_are_fired=True) as hapi:
        _register(hapi, now)
        response = _post(client, request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert card_signatures(response.get_json()) == expected


def test_first_page_in_prefetch_is_completed_from_its_getpages_link(
    client: FlaskClient, now: datetime
) -> None:
    """An EHR that prefetches HAPI's first page as it came leaves the rest to the service."""
    request = with_fhir_fallback(_full_prefetch_request(now), fhir_server=BASE, token=TOKEN,
                                 keep_prefetch=["patient", "conditions", "observations",
                                                "procedures", "diagnosticReports",
                                                "imagingStudies"])
    request["prefetch"]["observations"] = _reply("observations-page-1.json", now)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as hapi:
        _register(hapi, now, only_pages=True)
        response = _post(client, request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert card_signatures(response.get_json()) == EXPECTED


def test_a_page_that_fails_is_412_rather_than_cards_from_part_of_the_data(
    client: FlaskClient, now: datetime
) -> None:
    request = with_fhir_fallback(_full_prefetch_request(now), fhir_server=BASE, token=TOKEN)
    last_page = MANIFEST["replies"][4]["url"]
    assert last_page.endswith("_getpagesoffset=4&_count=2&_pretty=true&_bundletype=searchset")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as hapi:
        hapi.add(responses.GET, last_page, status=500, json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "exception", "diagnostics": "search expired"}],
        })
        _register(hapi, now)
        response = _post(client, request)
    assert response.status_code == 412, response.get_data(as_text=True)
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert "observations" in response.get_data(as_text=True)
