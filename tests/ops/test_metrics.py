"""``/metrics`` speaks the Prometheus text format and adds up every gunicorn worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from service import metrics


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


@pytest.fixture
def scrape(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.declare_services(["spinehip-order-select", "spinehip-patient-view"])
    app = Flask(__name__)
    app.register_blueprint(metrics.bp)
    client = app.test_client()

    def get() -> str:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.content_type.startswith("text/plain; version=")
        return response.get_data(as_text=True)

    return get


def test_each_recording_function_moves_its_metric(scrape) -> None:
    before = scrape()
    metrics.observe_request("spinehip-order-select", 200, 0.03)
    metrics.observe_rule_evaluation("spinehip-order-select", 0.004)
    metrics.count_card("cauda-equina")
    metrics.count_shadow_decision("spine-pattern-mri")
    metrics.observe_fhir_request("Observation", 0.2, error=False)
    metrics.observe_fhir_request("Observation", 3.0, error=True)
    metrics.count_rule_reload(success=True)
    metrics.count_rule_reload(success=False)
    metrics.count_data_quality({"excluded": {"other-patient": 1, "Patient/123 free text": 1},
                                "operationOutcomes": 1})
    after = scrape()
    expected_increase = [
        ("spinehip_request_seconds_count", {"service": "spinehip-order-select", "status": "200"}),
        ("spinehip_rule_evaluation_seconds_count", {"service": "spinehip-order-select"}),
        ("spinehip_cards_total", {"topic": "cauda-equina"}),
        ("spinehip_shadow_decisions_total", {"rule": "spine-pattern-mri"}),
        ("spinehip_fhir_requests_total", {"resource": "Observation", "outcome": "ok"}),
        ("spinehip_fhir_requests_total", {"resource": "Observation", "outcome": "error"}),
        ("spinehip_rule_reloads_total", {"result": "success"}),
        ("spinehip_rule_reloads_total", {"result": "failure"}),
        ("spinehip_records_excluded_total", {"reason": "other-patient"}),
        ("spinehip_records_excluded_total", {"reason": "unreadable"}),
        ("spinehip_records_excluded_total", {"reason": "fhir-operation-outcome"}),
    ]
    for name, labels in expected_increase:
        assert sample(after, name, **labels) == sample(before, name, **labels) + 1, name
    assert sample(after, "spinehip_records_excluded_total", reason="Patient/123 free text") == 0
    assert sample(after, "spinehip_fhir_request_seconds_count", resource="Observation") == (
        sample(before, "spinehip_fhir_request_seconds_count", resource="Observation") + 2
    )


def test_label_values_outside_the_fixed_sets_are_folded(scrape) -> None:
    before = scrape()
    metrics.observe_request("no-such-service", 599, 0.01)
    metrics.observe_fhir_request("Zz-chosen-by-the-server", 0.01, error=False)
    after = scrape()
    assert sample(after, "spinehip_request_seconds_count", service="unknown", status="5xx") == (
        sample(before, "spinehip_request_seconds_count", service="unknown", status="5xx") + 1
    )
    assert sample(after, "spinehip_fhir_requests_total", resource="other", outcome="ok") == (
        sample(before, "spinehip_fhir_requests_total", resource="other", outcome="ok") + 1
    )
    assert "no-such-service" not in after and "Zz-chosen-by-the-server" not in after


def test_slow_request_lands_in_the_right_latency_bucket(scrape) -> None:
    before = scrape()
    metrics.observe_request("spinehip-patient-view", 200, 0.7)
    after = scrape()
    labels = {"service": "spinehip-patient-view", "status": "200"}

    def bucket(text: str, le: str) -> float:
        return sample(text, "spinehip_request_seconds_bucket", le=le, **labels)

    assert bucket(after, "0.5") == bucket(before, "0.5")
    assert bucket(after, "1.0") == bucket(before, "1.0") + 1


RECORD_IN_WORKER = "from service import metrics; metrics.count_card('cauda-equina')"
SCRAPE = "from service import metrics; import sys; sys.stdout.write(metrics.exposition().decode())"


def test_multiprocess_mode_adds_up_separate_worker_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", RECORD_IN_WORKER], env=env, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert sample(scraped, "spinehip_cards_total", topic="cauda-equina") == 2
