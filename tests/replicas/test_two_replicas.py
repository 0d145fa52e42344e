"""Two replicas behind one database behave as one service: feedback, snoozes and spent JWT ids
written through one replica are seen by the other."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from service import fixtures
from service.config import PROJECT_ROOT
from tests.support.processes import SPINEHIP
from tests.support.replicas import SNOOZE_REASON, Replica, Signer

pytestmark = pytest.mark.postgres

REQUESTS = PROJECT_ROOT / "fixtures" / "requests"
PATIENT_VIEW = "/cds-services/spinehip-patient-view"
FEEDBACK = PATIENT_VIEW + "/feedback"
DISCOVERY = "/cds-services"


def cards_by_topic(replica: Replica, sign: Signer, fixture: str) -> dict[str, dict[str, Any]]:
    """The cards ``replica`` returns for a fixture request, keyed by rule id."""
    body = fixtures.load_request(REQUESTS / f"{fixture}.json", datetime.now(UTC))
    response = replica.call(sign, PATIENT_VIEW, body)
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


def now_instant() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def report_rows(env: dict[str, str]) -> dict[str, dict[str, str]]:
    printed = subprocess.run(
        [str(SPINEHIP), "report", "--csv"],
        capture_output=True, text=True, timeout=60, check=True, cwd=PROJECT_ROOT, env=env,
    )
    return {row["rule"]: row for row in csv.DictReader(io.StringIO(printed.stdout))}


def test_feedback_sent_to_either_replica_is_stored_once_and_reported(replicas, sign, service_env):
    a, b = replicas
    card = cards_by_topic(a, sign, "s04-mixed-hip-oa-stenosis")["diagnostic-hip-injection"]
    feedback = {"feedback": [{
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": now_instant(),
    }]}

    first = b.call(sign, FEEDBACK, feedback)
    again = a.call(sign, FEEDBACK, feedback)

    assert (first.status_code, first.json()) == (200, {"received": 1, "stored": 1})
    assert (again.status_code, again.json()) == (200, {
        "received": 1,
        "stored": 0,
        "notStored": [{"item": "feedback[0]", "card": card["uuid"], "reason": "already received"}],
    })
    row = report_rows(service_env)["diagnostic-hip-injection"]
    assert (row["fired"], row["accepted"], row["overridden"], row["acceptance"]) == ("1", "1", "0", "100%")


def test_snooze_sent_to_one_replica_silences_the_rule_for_that_patient_on_the_other(replicas, sign):
    a, b = replicas
    card = cards_by_topic(a, sign, "s01-sciatica-8-weeks")["spine-pattern-mri"]
    reason = next(r for r in card["overrideReasons"] if r["code"] == SNOOZE_REASON)
    snooze = {"feedback": [{
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason},
        "outcomeTimestamp": now_instant(),
    }]}

    stored = a.call(sign, FEEDBACK, snooze)

    assert stored.json() == {"received": 1, "stored": 1}
    assert "spine-pattern-mri" not in cards_by_topic(b, sign, "s01-sciatica-8-weeks")
    assert "spine-pattern-mri" in cards_by_topic(b, sign, "spine-onset-day43")


def test_token_accepted_by_one_replica_is_refused_as_a_replay_by_the_other(replicas, sign):
    a, b = replicas
    both = (a.url + DISCOVERY, b.url + DISCOVERY)
    token = sign(*both)

    accepted = a.call(sign, DISCOVERY, token=token)
    replayed = b.call(sign, DISCOVERY, token=token)
    # A token for the same endpoints with an unused jti passes on B: only the spent jti is refused.
    fresh = b.call(sign, DISCOVERY, token=sign(*both))

    assert (accepted.status_code, replayed.status_code, fresh.status_code) == (200, 401, 200)
