"""JSON request logs: one line per request with an id and a duration, and never a token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, jsonify

from service import fixtures, logging_setup
from service.config import PROJECT_ROOT, Settings
from tests.support.app import make_app

# A syntactically valid, unsigned test JWT: header {"alg":"none"}, payload {"sub":"x"}.
TEST_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logging_setup.configure_logging("INFO", stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def client(log_stream: io.StringIO):
    app = Flask(__name__)

    @app.post("/cds-services/<service_id>")
    def invoke(service_id: str):
        logging.getLogger("service.web.invoke").warning("upstream said Bearer %s", TEST_JWT)
        return jsonify({"cards": []})

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"failed with token {TEST_JWT}")

    logging_setup.init_app(app)
    return app.test_client()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def request_lines(stream: io.StringIO) -> list[dict]:
    return [entry for entry in lines(stream) if entry.get("event") == "request"]


def test_one_json_line_per_request_with_id_and_duration(client, log_stream) -> None:
    response = client.post("/cds-services/spinehip-order-select", json={})
    [entry] = request_lines(log_stream)
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert (entry["method"], entry["route"], entry["status"]) == (
        "POST",
        "/cds-services/<service_id>",
        200,
    )
    assert entry["service"] == "spinehip-order-select"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0


def test_caller_request_id_is_kept_when_sane_and_replaced_when_not(client, log_stream) -> None:
    kept = client.post("/cds-services/a", json={}, headers={"X-Request-ID": "ehr-42.a_b"})
    replaced = client.post("/cds-services/a", json={}, headers={"X-Request-ID": "x" * 65})
    assert kept.headers["X-Request-ID"] == "ehr-42.a_b"
    assert len(replaced.headers["X-Request-ID"]) == 32
    assert [e["request_id"] for e in request_lines(log_stream)] == [
        "ehr-42.a_b",
        replaced.headers["X-Request-ID"],
    ]


def test_messages_inside_a_request_carry_its_id(client, log_stream) -> None:
    response = client.post("/cds-services/a", json={})
    warning = next(e for e in lines(log_stream) if e["logger"] == "service.web.invoke")
    assert warning["request_id"] == response.headers["X-Request-ID"]


def test_tokens_never_reach_the_log(client, log_stream) -> None:
    client.post(
        "/cds-services/a",
        json={"fhirAuthorization": {"access_token": "secret-access-token"}},
        headers={"Authorization": f"Bearer {TEST_JWT}"},
    )
    client.get("/boom")
    text = log_stream.getvalue()
    assert TEST_JWT not in text
    assert "secret-access-token" not in text
    assert "[REDACTED]" in text


def test_unhandled_error_is_still_logged_as_a_500_request(client, log_stream) -> None:
    client.get("/boom")
    assert [e["status"] for e in request_lines(log_stream)] == [500]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def", "abc.def"),
        (f"token={TEST_JWT}", TEST_JWT.split(".")[1]),
    ],
)
def test_log_lines_lose_bearer_credentials_and_jwts(log_stream, text: str, secret: str) -> None:
    logging.getLogger("spinehip.test").warning("%s", text)
    assert secret not in log_stream.getvalue()
    assert "spinehip.test" in log_stream.getvalue()


def test_log_lines_without_secrets_are_unchanged(log_stream) -> None:
    logging.getLogger("spinehip.test").warning("no secrets here")
    assert [entry["message"] for entry in lines(log_stream)] == ["no secrets here"]


def test_a_huge_logged_field_is_capped_and_scrubbed(log_stream: io.StringIO) -> None:
    noise = "x" * 1_000_000
    logging.getLogger("spinehip.request").info(
        "request", extra={"fields": {"route": f"{TEST_JWT} {noise}", "status": 200}}
    )
    [line] = log_stream.getvalue().splitlines()
    entry = json.loads(line)
    assert len(line) < 20_000
    assert entry["route"].startswith("[REDACTED] xxx") and "more characters not logged" in entry["route"]
    assert entry["status"] == 200


# The service itself: a hook call is one line, the request line, whatever the view did.
REQUESTS = PROJECT_ROOT / "fixtures" / "requests"


def _served_lines(tmp_path: Path, log_stream: io.StringIO, request_file: str) -> list[dict]:
    app = make_app(Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}))
    body = fixtures.load_request(REQUESTS / request_file, datetime.now(UTC))
    log_stream.seek(0)
    log_stream.truncate()
    reply = app.test_client().post(f"/cds-services/spinehip-{body['hook']}", json=body)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return lines(log_stream)


def test_a_hook_call_logs_one_line_saying_what_was_answered(tmp_path, log_stream) -> None:
    [entry] = _served_lines(tmp_path, log_stream, "messy-retention-date-only-14d.json")
    assert (entry["event"], entry["service"], entry["status"]) == ("request", "spinehip-patient-view", 200)
    assert entry["cards"] == 1 and entry["fetched"] == [] and entry["hook_instance"]
    assert isinstance(entry["evaluation_ms"], float)
    assert "uncertain" not in entry


def test_records_counted_although_uncertain_are_on_the_request_line(tmp_path, log_stream) -> None:
    [entry] = _served_lines(tmp_path, log_stream, "messy-retention-undated.json")
    assert entry["event"] == "request" and entry["cards"] == 1
    assert entry["uncertain"] == {"date": 1}


@pytest.mark.parametrize(("value", "logged"), [
    ("plain", "plain"),
    ("a lone \ud800 surrogate", "a lone \ud800 surrogate"),
    (2**70, 2**70),
    (float("nan"), None),
    ({3: "a key that is not text"}, {"3": "a key that is not text"}),
])
def test_every_line_is_json_whatever_a_field_holds(log_stream, value, logged) -> None:
    """Lines are written with orjson; what it cannot write (a lone surrogate, an integer past
    64 bits) is written by the json module, and NaN is null: never a line a collector cannot
    parse, never a lost line."""
    logging.getLogger("spinehip.test").info("noted", extra={"fields": {"value": value}})
    [entry] = lines(log_stream)
    assert entry["message"] == "noted" and entry["value"] == logged
