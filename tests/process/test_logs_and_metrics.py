"""What operators see of a running ``spinehip serve``: its log lines and its /metrics.

Log collectors parse one JSON object per line, so every line the process writes, gunicorn's own
included, must be one; start-up failures too. /metrics must add up every worker, whatever run
mode started the service, so two scrapes in a row agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.config import PROJECT_ROOT
from service.engine import load_ruleset
from tests.support.processes import SPINEHIP, free_port, running, spinehip_env, start_spinehip

STABLE_KEYS = {"time", "level", "logger", "message"}
BODY = {"hook": "patient-view", "hookInstance": "0d6f6c1e-9d7b-4c3a-8f1e-2b3c4d5e6f70",
        "context": {"userId": "Practitioner/demo", "patientId": "s01-sciatica-8-weeks"}}


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as a JSON object; fails naming the first line that is not one."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(entry, dict) and entry.keys() >= STABLE_KEYS, line
        entries.append(entry)
    assert entries, "nothing was logged"
    return entries


def requests_total(text: str, service: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "spinehip_request_seconds_count" and s.labels.get("service") == service)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """A 2-worker server as `make run` starts it: no PROMETHEUS_MULTIPROC_DIR in the environment."""
    workdir = tmp_path_factory.mktemp("two-workers")
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=f"sqlite:///{workdir / 'store.db'}")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with running(start_spinehip(env, workdir, workers=2)) as served:
        yield served


def test_scrapes_add_up_every_worker(two_workers) -> None:
    url = f"{two_workers.base_url}/cds-services/spinehip-patient-view"
    calls = 12
    for _ in range(calls):  # a new connection each: gunicorn hands them to either worker
        assert requests.post(url, json=BODY, timeout=30, headers={"Connection": "close"}).ok
    scrapes = [requests.get(f"{two_workers.base_url}/metrics", timeout=10,
                            headers={"Connection": "close"}).text for _ in range(4)]
    assert [requests_total(s, "spinehip-patient-view") for s in scrapes] == [calls] * 4


def test_every_line_is_json_with_one_listening_line_and_request_fields(two_workers) -> None:
    requests.get(f"{two_workers.base_url}/no-such-page", timeout=10)
    requests.post(f"{two_workers.base_url}/cds-services/spinehip-patient-view", data=b"{oops",
                  headers={"Content-Type": "application/json"}, timeout=10)
    two_workers.stop()
    entries = json_lines(two_workers.log_path.read_text())
    [listening] = [e for e in entries if e.get("event") == "listening"]
    assert listening["address"] == two_workers.base_url
    assert listening["rules_version"] == load_ruleset(PROJECT_ROOT / "rules").full_version
    assert listening["workers"] == 2
    served = [e for e in entries if e.get("event") == "request"]
    assert {(e["method"], e["route"], e["status"]) for e in served} >= {
        ("POST", "/cds-services/<service_id>", 200), ("POST", "/cds-services/<service_id>", 400),
        ("GET", None, 404)}
    for entry in served:
        assert entry["request_id"] and isinstance(entry["duration_ms"], float)


def test_stale_worker_samples_from_an_earlier_run_are_not_counted(tmp_path: Path) -> None:
    """A restarted container keeps its emptyDir: files of the last run must not be added again."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    subprocess.run([sys.executable, "-c", (
        "from prometheus_client import Counter; "
        "Counter('spinehip_cards', 'x', ['topic']).labels(topic='left-over').inc(7)")],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}, check=True, timeout=60)
    assert list(shared.glob("*.db"))
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
                       PROMETHEUS_MULTIPROC_DIR=str(shared))
    with running(start_spinehip(env, tmp_path, workers=2)) as served:
        requests.post(f"{served.base_url}/cds-services/spinehip-patient-view", json=BODY, timeout=30)
        text = requests.get(f"{served.base_url}/metrics", timeout=10).text
    assert "left-over" not in text
    assert requests_total(text, "spinehip-patient-view") == 1


def test_gunicorns_own_errors_are_json(tmp_path: Path) -> None:
    """A port already taken: gunicorn's retries and its final error are JSON lines too."""
    port = free_port()
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}")
    with running(start_spinehip(env, tmp_path, port=port, name="first")):
        second = start_spinehip(env, tmp_path, port=port, name="second")
        assert second.process.wait(timeout=120) != 0
    entries = json_lines(second.log_path.read_text())
    assert any(e["level"] == "ERROR" and e["logger"].startswith("gunicorn") for e in entries)


@pytest.mark.parametrize(("setting", "value", "named"), [
    ("SPINEHIP_MODE", "staging", "SPINEHIP_MODE"),
    ("SPINEHIP_RULES_DIR", "/nonexistent/rules", "/nonexistent/rules"),
])
def test_start_up_errors_are_json_and_name_the_problem(tmp_path, setting, value, named) -> None:
    env = spinehip_env(DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}", **{setting: value})
    done = subprocess.run([str(SPINEHIP), "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    entries = json_lines(done.stdout + done.stderr)
    [failure] = [e for e in entries if e.get("event") == "startup_failed"]
    assert failure["level"] == "ERROR" and named in json.dumps(failure)
