"""The service as users run it: gunicorn, demo patients, every fixture request answered."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest
import requests

from service import fixtures
from service.config import PROJECT_ROOT
from tests.support.processes import SPINEHIP

REQUESTS = sorted((PROJECT_ROOT / "fixtures" / "requests").glob("*.json"))


def test_served_discovery_lists_the_four_hooks(server):
    response = requests.get(f"{server}/cds-services", timeout=5)
    assert response.status_code == 200
    assert {s["hook"] for s in response.json()["services"]} == {
        "patient-view", "order-select", "order-sign", "encounter-start",
    }


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_served_fixture_request_gets_a_valid_response(server, path):
    body = fixtures.load_request(path, datetime.now(UTC))
    url = f"{server}/cds-services/spinehip-{body['hook']}"
    response = requests.post(url, json=body, timeout=10)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert isinstance(payload["cards"], list)
    for card in payload["cards"]:
        assert card["summary"] and len(card["summary"]) <= 139
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        if "suggestions" in card:
            assert card["selectionBehavior"] in ("at-most-one", "any")


def test_demo_patient_is_answered_without_prefetch_or_fhir_server(server):
    """What a clinician trying the service sees: a demo patient id alone is enough."""
    patient_id = fixtures.demo_patient_ids(PROJECT_ROOT / "fixtures")[0]
    body = {
        "hook": "patient-view",
        "hookInstance": "0d6f6c1e-9d7b-4c3a-8f1e-2b3c4d5e6f70",
        "context": {"userId": "Practitioner/demo", "patientId": patient_id},
    }
    response = requests.post(f"{server}/cds-services/spinehip-patient-view", json=body, timeout=10)
    assert response.status_code == 200, response.text
    sources = response.json()["extension"]["org.spinehip-cds"]["dataSources"]
    assert set(sources.values()) == {"demo"}


def test_evaluate_command_prints_the_same_cards_as_the_api(server):
    path = PROJECT_ROOT / "fixtures" / "requests" / "s01-sciatica-8-weeks.json"
    now = datetime.now(UTC)
    printed = subprocess.run(
        [str(SPINEHIP), "evaluate", str(path), "--at", now.isoformat()],
        capture_output=True, text=True, timeout=60, check=True, cwd=PROJECT_ROOT,
    )
    offline = json.loads(printed.stdout)
    online = requests.post(
        f"{server}/cds-services/spinehip-patient-view",
        json=fixtures.load_request(path, now),
        timeout=10,
    ).json()

    def topics(body):
        return sorted(c["source"]["topic"]["code"] for c in body["cards"])

    assert topics(offline) == topics(online) and topics(online)
