"""Request limits refuse, never truncate; what a bad request sends is never echoed back at length.

Every case is a complete fixture request that answers 200 with its cards, changed in one way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from service import fixtures
from service.cdshooks.response import EXTENSION_KEY
from service.config import PROJECT_ROOT
from tests.support.hostile_service import (
    MAX_BODY_BYTES,
    PATIENT_VIEW,
    HostileSetup,
    card_topics,
    diagnostics,
    issue_fields,
)

pytestmark = pytest.mark.postgres

REQUESTS = PROJECT_ROOT / "fixtures" / "requests"
ORDER_SELECT = "spinehip-order-select"
#: An answer that quotes the request back at length is larger than this.
SMALL_ANSWER_BYTES = 2048


def fixture_request(name: str) -> dict[str, Any]:
    body = fixtures.load_request(REQUESTS / f"{name}.json", datetime.now(UTC))
    body["hookInstance"] = str(uuid.uuid4())
    return body


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON followed by whitespace up to ``size`` bytes: still the same valid request."""
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


def assert_refused_briefly(response: requests.Response, member: str) -> None:
    """A 400 naming ``member`` alone, in an answer that does not quote the request at length."""
    assert response.status_code == 400, response.text
    assert issue_fields(response) == [member]
    assert len(response.content) < SMALL_ANSWER_BYTES


def chunks(data: bytes, step: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), step):
        yield data[start:start + step]


def post_raw(hostile: HostileSetup, path: str, data: bytes, *, chunked: bool) -> requests.Response:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {hostile.token(path)}"}
    return requests.post(
        hostile.service.base_url + path, data=chunks(data) if chunked else data, headers=headers, timeout=60
    )


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "with-length"])
def test_oversize_body_is_413_never_its_prefix_evaluated(hostile: HostileSetup, chunked: bool) -> None:
    body = fixture_request("ces-condition-snomed")
    path = f"/cds-services/{PATIENT_VIEW}"
    within = post_raw(hostile, path, padded(body, MAX_BODY_BYTES // 2), chunked=chunked)
    assert within.status_code == 200, within.text
    assert "cauda-equina" in card_topics(within)

    body["hookInstance"] = str(uuid.uuid4())
    over = post_raw(hostile, path, padded(body, MAX_BODY_BYTES + 256 * 1024), chunked=chunked)
    assert over.status_code == 413, over.text
    assert str(MAX_BODY_BYTES) in diagnostics(over)


@pytest.mark.parametrize(
    "hook_instance", ["not-a-uuid", "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea-x", "d1577c69" * 60_000, 42]
)
def test_hook_instance_must_be_a_uuid(hostile: HostileSetup, hook_instance: Any) -> None:
    body = fixture_request("ces-condition-snomed")
    assert hostile.post(f"/cds-services/{PATIENT_VIEW}", body).status_code == 200
    body["hookInstance"] = hook_instance
    assert_refused_briefly(hostile.post(f"/cds-services/{PATIENT_VIEW}", body), "hookInstance")


def test_draft_orders_are_refused_on_a_hook_without_them(hostile: HostileSetup) -> None:
    order_select = fixture_request("early-sciatica-order-select-mri")
    assert hostile.post(f"/cds-services/{ORDER_SELECT}", order_select).status_code == 200
    patient_view = fixture_request("early-sciatica")
    patient_view["context"]["draftOrders"] = order_select["context"]["draftOrders"]
    response = hostile.post(f"/cds-services/{PATIENT_VIEW}", patient_view)
    assert response.status_code == 400, response.text
    assert issue_fields(response) == ["context.draftOrders"]


def test_skipped_draft_orders_are_counted_beyond_the_first_few(hostile: HostileSetup) -> None:
    body = fixture_request("early-sciatica-order-select-mri")
    body["context"]["draftOrders"]["entry"] += [{"resource": "malformed"}] * 30
    response = hostile.post(f"/cds-services/{ORDER_SELECT}", body)
    assert response.status_code == 200, response.text
    skipped = response.json()["extension"][EXTENSION_KEY]["skippedDraftOrders"]
    assert skipped[0].startswith("context.draftOrders.entry[")
    assert len(skipped) <= 21 and skipped[-1] == "and 10 more entries"


def test_a_flood_of_draft_orders_is_refused_in_a_short_answer(hostile: HostileSetup) -> None:
    body = fixture_request("early-sciatica-order-select-mri")
    body["context"]["draftOrders"]["entry"] += [0] * 100_000
    assert_refused_briefly(hostile.post(f"/cds-services/{ORDER_SELECT}", body), "context.draftOrders.entry")


def test_an_error_quotes_request_text_only_briefly(hostile: HostileSetup) -> None:
    body = fixture_request("ces-condition-snomed")
    body["hook"] = "patient-view-" + "x" * 100_000
    assert_refused_briefly(hostile.post(f"/cds-services/{PATIENT_VIEW}", body), "hook")

    long_id = "no-such-service-" * 150
    unknown = hostile.post(f"/cds-services/{long_id}", fixture_request("ces-condition-snomed"))
    assert unknown.status_code == 404, unknown.text
    assert len(unknown.content) < SMALL_ANSWER_BYTES
