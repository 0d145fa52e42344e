"""The service as users run it: gunicorn, demo patients, every fixture request answered."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import orjson
import pytest
import requests

from service import fixtures
from service.config import PROJECT_ROOT
from service.store import OVERRIDE_REASON_SYSTEM
from tests.support.processes import SPINEHIP, evaluate_in_process, spinehip_env

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
    patient_id = sorted(fixtures.demo_patient_files(PROJECT_ROOT / "fixtures"))[0]
    body = {
        "hook": "patient-view",
        "hookInstance": "0d6f6c1e-9d7b-4c3a-8f1e-2b3c4d5e6f70",
        "context": {"userId": "Practitioner/demo", "patientId": patient_id},
    }
    response = requests.post(f"{server}/cds-services/spinehip-patient-view", json=body, timeout=10)
    assert response.status_code == 200, response.text
    sources = response.json()["extension"]["org.spinehip-cds"]["dataSources"]
    assert set(sources.values()) == {"demo"}


UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def without_uuids(raw: bytes) -> bytes:
    return UUID.sub(b"<uuid>", raw)


def post(server: str, body: dict) -> requests.Response:
    return requests.post(f"{server}/cds-services/spinehip-{body['hook']}", json=body, timeout=10)


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_evaluate_command_gives_the_api_answer_byte_for_byte(server, server_env, path, tmp_path,
                                                            monkeypatch, capsysbinary):
    rendered = tmp_path / path.name
    rendered.write_bytes(orjson.dumps(fixtures.load_request(path, datetime.now(UTC))))
    online = post(server, orjson.loads(rendered.read_bytes()))
    code, offline = evaluate_in_process(rendered, server_env, monkeypatch, capsysbinary)
    assert (code == 0) == (online.status_code == 200)
    assert without_uuids(offline) == without_uuids(online.content)


def test_evaluate_command_reads_the_snoozes_of_the_configured_store(server, server_env, tmp_path):
    """Offline, as a real process: a card snoozed through the API is silenced for the command
    too when it is given the same database, and only then."""
    path = PROJECT_ROOT / "fixtures" / "requests" / "s13-piriformis.json"
    rendered = tmp_path / path.name
    rendered.write_bytes(orjson.dumps(fixtures.load_request(path, datetime.now(UTC))))
    body = orjson.loads(rendered.read_bytes())
    [card] = post(server, body).json()["cards"]
    feedback = {"feedback": [{
        "card": card["uuid"], "outcome": "overridden",
        "outcomeTimestamp": datetime.now(UTC).isoformat(),
        "overrideReason": {"reason": {"system": OVERRIDE_REASON_SYSTEM, "code": "snooze-30d"}},
    }]}
    answered = requests.post(f"{server}/cds-services/spinehip-{body['hook']}/feedback",
                             json=feedback, timeout=10)
    assert answered.status_code == 200, answered.text
    online = post(server, body)
    assert online.json()["cards"] == []

    def evaluate(env: dict[str, str]) -> bytes:
        return subprocess.run([str(SPINEHIP), "evaluate", str(rendered)], env=env,
                              capture_output=True, timeout=60, check=True, cwd=PROJECT_ROOT).stdout

    assert without_uuids(evaluate(spinehip_env(**server_env))) == without_uuids(online.content)
    no_store = {k: v for k, v in server_env.items() if k != "DATABASE_URL"}
    unsnoozed = orjson.loads(evaluate({**spinehip_env(**no_store), "DATABASE_URL": ""}))
    assert [c["source"]["topic"]["code"] for c in unsnoozed["cards"]] == ["piriformis-pattern"]


def test_two_worker_processes_give_the_same_answer(tmp_path):
    """Each gunicorn worker has its own string-hash seed; the answer must not depend on it
    (evidence recorded on the same day once came out in a seed-dependent order)."""
    path = PROJECT_ROOT / "fixtures" / "requests" / "gtps-day41.json"
    rendered = tmp_path / path.name
    rendered.write_bytes(orjson.dumps(fixtures.load_request(path, datetime.now(UTC))))

    def evaluate(seed: str) -> bytes:
        env = {**spinehip_env(SPINEHIP_MODE="development"), "PYTHONHASHSEED": seed}
        return subprocess.run([str(SPINEHIP), "evaluate", str(rendered)], env=env,
                              capture_output=True, timeout=60, check=True, cwd=PROJECT_ROOT).stdout

    answers = {without_uuids(evaluate(seed)) for seed in ("1", "2")}
    assert len(answers) == 1
    assert orjson.loads(answers.pop())["cards"]
