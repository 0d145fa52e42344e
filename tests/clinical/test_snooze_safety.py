"""Snooze silences routine cards for a patient, never a red flag."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from service import fixtures
from service.config import PROJECT_ROOT, Settings
from tests.support.app import make_app

OVERRIDE_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/override-reason"


def call(client, name: str) -> dict:
    request = fixtures.load_request(
        PROJECT_ROOT / "fixtures" / "requests" / f"{name}.json", datetime.now(UTC)
    )
    response = client.post(
        f"/cds-services/spinehip-{request['hook']}", data=json.dumps(request), content_type="application/json"
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def snooze(client, card: dict) -> set[str]:
    """Override ``card`` with the snooze reason; returns the reasons the card offered."""
    reasons = {r["code"] for r in card.get("overrideReasons", [])}
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-20T10:00:00Z",
                "overrideReason": {"reason": {"system": OVERRIDE_SYSTEM, "code": "snooze-30d"}},
            }
        ]
    }
    response = client.post(
        "/cds-services/spinehip-patient-view/feedback", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    return reasons


def topics(body: dict) -> set[str]:
    return {c["source"]["topic"]["code"] for c in body["cards"]}


def test_snooze_silences_a_routine_card_but_never_a_red_flag(tmp_path):
    app = make_app(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", demo_patients=False,
                            db_timeout_s=10.0))
    client = app.test_client()

    routine = call(client, "s01-sciatica-8-weeks")
    (card,) = routine["cards"]
    assert "snooze-30d" in snooze(client, card)  # the card offers the snooze reason itself
    assert "spine-pattern-mri" not in topics(call(client, "s01-sciatica-8-weeks"))

    red_flag = call(client, "s08-ces-with-hip-oa")
    (ces,) = red_flag["cards"]
    assert "snooze-30d" not in snooze(client, ces)  # not offered for a red flag ...
    assert "cauda-equina" in topics(call(client, "s08-ces-with-hip-oa"))  # ... and not honoured
