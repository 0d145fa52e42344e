"""PostgreSQL stopped and restarted under a live two-worker ``spinehip serve``.

During the outage every call still gets its cards (the cauda-equina patient its critical card),
``/readyz`` says degraded with the journal depth, feedback is journalled; a worker killed with
records in its journal loses none. After the restart every call made during the outage is in
the audit trail exactly once, and ``spinehip report`` counts it.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from service.config import PROJECT_ROOT
from service.store.schema import Feedback, Invocation
from tests.support.databases import Postgres, own_postgres
from tests.support.processes import SPINEHIP, running, spinehip_env, start_spinehip

pytestmark = pytest.mark.postgres

CES_PATIENT = "s08-ces-with-hip-oa"
OUTAGE_CALLS = 6
RECOVERY_S = 60.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if not os.environ.get("SPINEHIP_TEST_PG_URL"):
        pytest.skip("PostgreSQL is started by `make test`")
    with own_postgres() as server:
        yield server


def hook_call(base: str) -> tuple[str, requests.Response]:
    instance = str(uuid.uuid4())
    body = {
        "hook": "patient-view",
        "hookInstance": instance,
        "context": {"userId": "Practitioner/demo", "patientId": CES_PATIENT},
    }
    return instance, requests.post(f"{base}/cds-services/spinehip-patient-view", json=body, timeout=10)


def critical_card(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    [card] = [c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "cauda-equina"]
    assert card["indicator"] == "critical"
    return card


def audit_counts(url: str, instances: list[str]) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Invocation.hook_instance, func.count())
                .where(Invocation.hook_instance.in_(instances))
                .group_by(Invocation.hook_instance)
            )
            return {instance: count for instance, count in rows}
    finally:
        engine.dispose()


def feedback_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(Feedback)).scalar_one()
    finally:
        engine.dispose()


def wait_until_ready(base: str) -> dict:
    deadline = time.monotonic() + RECOVERY_S
    while True:
        ready = requests.get(f"{base}/readyz", timeout=10).json()
        if ready["status"] == "ready" or time.monotonic() > deadline:
            return ready
        time.sleep(0.5)


def journal_writers(journal: Path) -> set[int]:
    """Pids of the workers whose journal segments hold records (``host-pid-random.jsonl``)."""
    return {
        int(path.name.rsplit("-", 2)[-2])
        for path in journal.rglob("*.jsonl")
        if path.stat().st_size
    }


def test_outage_costs_the_audit_a_delay_not_the_clinician_the_card(postgres, tmp_path: Path) -> None:
    server, url = postgres, postgres.url
    journal = tmp_path / "journal"
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=url, SPINEHIP_JOURNAL_DIR=str(journal),
                       SPINEHIP_DB_TIMEOUT="1")
    with running(start_spinehip(env, tmp_path, workers=2)) as served:
        before, response = hook_call(served.base_url)
        critical_card(response)
        assert requests.get(f"{served.base_url}/readyz", timeout=10).json()["status"] == "ready"

        server.halt()
        during: list[str] = []
        cards: list[dict] = []
        for _ in range(OUTAGE_CALLS):
            instance, response = hook_call(served.base_url)
            cards.append(critical_card(response))
            during.append(instance)
        feedback = requests.post(
            f"{served.base_url}/cds-services/spinehip-patient-view/feedback",
            json={"feedback": [{
                "card": cards[0]["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": cards[0]["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": datetime.now(UTC).isoformat(),
            }]},
            timeout=10,
        )
        ready = requests.get(f"{served.base_url}/readyz", timeout=10)
        metrics = requests.get(f"{served.base_url}/metrics", timeout=10).text

        assert (feedback.status_code, feedback.json()) == (202, {"received": 1, "stored": 0, "journalled": 1})
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert "database" in ready.json()["reason"]
        assert ready.json()["journal"]["depth"] == OUTAGE_CALLS + 1
        assert f'spinehip_journal_depth{{dependency="database"}} {float(OUTAGE_CALLS + 1)}' in metrics
        assert 'spinehip_degraded{dependency="database"} 1.0' in metrics

        # A worker dies with records in its journal: they are not lost.
        writers = journal_writers(journal)
        assert writers, "the outage calls were journalled"
        os.kill(next(iter(writers)), signal.SIGKILL)

        server.resume()
        recovered = wait_until_ready(served.base_url)
        assert recovered["status"] == "ready", recovered
        assert recovered["journal"]["depth"] == 0

    counts = audit_counts(url, [before, *during])
    assert counts == {instance: 1 for instance in [before, *during]}
    assert feedback_rows(url) == 1
    report = subprocess.run(
        [str(SPINEHIP), "report", "--csv"], capture_output=True, text=True, timeout=60, check=True,
        cwd=PROJECT_ROOT, env=spinehip_env(DATABASE_URL=url),
    )
    rows = {row["rule"]: row for row in csv.DictReader(io.StringIO(report.stdout))}
    assert rows["cauda-equina"]["fired"] == str(OUTAGE_CALLS + 1)
    assert rows["cauda-equina"]["accepted"] == "1"
