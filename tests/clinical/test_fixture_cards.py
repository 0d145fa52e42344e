"""Every clinical fixture end to end through the HTTP API: exactly its expected cards.

The expected cards (fixtures/expected.yaml) were derived by hand from the clinical reference,
independently of the rule files, so this is the check that the rules say what the reference says.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service import fixtures
from service.config import PROJECT_ROOT, Settings
from tests.protocol.test_conformance import empty_members
from tests.support.app import make_app
from tests.support.expected_cases import CARD_TOPICS, load_cases

CASES = load_cases(PROJECT_ROOT / "fixtures")
CPT = "http://www.ama-assn.org/go/cpt"
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
TOPIC_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/card-topic"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = tmp_path_factory.mktemp("clinical") / "store.db"
    app = make_app(Settings(database_url=f"sqlite:///{db}", demo_patients=False))
    return app.test_client()


def service_url(hook: str) -> str:
    return f"/cds-services/spinehip-{hook}"


def card_cpts(card: dict) -> tuple[str, ...]:
    codes = set()
    for suggestion in card.get("suggestions", []):
        for action in suggestion.get("actions", []):
            resource = action.get("resource") or {}
            if action["type"] == "create" and resource.get("resourceType") == "ServiceRequest":
                codes.update(c["code"] for c in resource["code"]["coding"] if c["system"] == CPT)
    return tuple(sorted(codes))


def pama_ratings(body: dict) -> dict[str, str]:
    ratings = {}
    for action in body.get("systemActions", []):
        resource = action.get("resource") or {}
        for ext in resource.get("extension", []):
            if ext["url"] == PAMA_RATING:
                ratings[resource["id"]] = ext["valueCodeableConcept"]["coding"][0]["code"]
    return ratings


def assert_card_shape(card: dict) -> None:
    """CARD, SRC, SUG, ACT and LNK rules of the conformance checklist."""
    assert UUID.match(card["uuid"])
    assert len(card["summary"]) <= 139
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] and card["source"]["url"].startswith("https://")
    assert card["source"]["topic"]["system"] == TOPIC_SYSTEM
    for reason in card.get("overrideReasons", []):
        assert reason["system"] and reason["code"] and reason["display"]
    for link in card.get("links", []):
        assert link["type"] == "absolute" and link["url"].startswith(("https://", "http://"))
        assert link["label"] and "appContext" not in link
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
    for suggestion in card.get("suggestions", []):
        assert UUID.match(suggestion["uuid"]) and suggestion["label"] and suggestion["actions"]
        for action in suggestion["actions"]:
            assert action["type"] in ("create", "update", "delete") and action["description"]
            if action["type"] == "delete":
                assert action["resourceId"].startswith("ServiceRequest/")
            else:
                assert action["resource"]["resourceType"]


def answer(client, case) -> dict:
    request = fixtures.load_request(case.request, datetime.now(UTC))
    response = client.post(
        service_url(request["hook"]), data=json.dumps(request), content_type="application/json"
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fixture_gives_exactly_its_expected_cards(client, case):
    body = answer(client, case)
    got = sorted(
        (c["source"]["topic"]["code"], c["indicator"], card_cpts(c)) for c in body["cards"]
    )
    want = sorted((c.topic, c.indicator, tuple(sorted(c.cpt))) for c in case.cards)
    assert got == want, f"{case.id}: {case.why}"
    assert [p for p in empty_members(body) if p != "$.cards"] == []  # RESP-05
    for card in body["cards"]:
        assert_card_shape(card)
    assert pama_ratings(body) == dict(case.pama)  # no rating where none can be determined (PAMA)


def test_every_rule_topic_is_exercised_by_some_fixture():
    topics = set().union(*(c.topics for c in CASES))
    assert topics == set(CARD_TOPICS)


def test_fixture_requests_exist_for_every_case():
    assert all(Path(c.request).is_file() and Path(c.patient).is_file() for c in CASES)
