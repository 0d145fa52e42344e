"""Hostile and malformed input never yields a 500 and never hangs (pytest-timeout bounds each test).

Starts from a valid hook request and replaces one member, anywhere from the top level down into
FHIR resources, with arbitrary JSON: wrong types, numbers as strings, odd unicode, deep nesting.
Outbound HTTP is intercepted, so a generated fhirServer can never reach the network.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import Settings
from tests.support.app import make_app
from tests.support.security import load_fixture

SERVICE = "/cds-services/spinehip-patient-view"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
) | st.sampled_from(["", " ", "\u202e", "\x00", "\U0001d54f" * 50, "null", "12", "-1e999", "Patient/../x"])
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | odd_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=20,
)

BASE = load_fixture("patient-view-prefetch.json")
TARGETS: list[tuple[Any, ...]] = [
    (), ("hook",), ("hookInstance",), ("context",), ("context", "patientId"), ("context", "userId"),
    ("fhirServer",), ("fhirAuthorization",), ("prefetch",), ("prefetch", "patient"),
    ("prefetch", "patient", "birthDate"), ("prefetch", "conditions"), ("prefetch", "conditions", "entry"),
    ("prefetch", "conditions", "entry", 0), ("prefetch", "conditions", "entry", 0, "resource"),
    ("prefetch", "conditions", "entry", 0, "resource", "code"),
    ("prefetch", "conditions", "entry", 0, "resource", "code", "coding"),
    ("prefetch", "conditions", "entry", 0, "resource", "code", "coding", 0, "code"),
    ("prefetch", "conditions", "entry", 0, "resource", "clinicalStatus"),
    ("prefetch", "conditions", "entry", 0, "resource", "onsetDateTime"),
    ("prefetch", "conditions", "entry", 0, "resource", "subject"),
    ("prefetch", "observations", "entry", 0, "resource", "valueQuantity"),
    ("prefetch", "observations", "entry", 0, "resource", "valueQuantity", "value"),
    ("prefetch", "observations", "entry", 0, "resource", "effectiveDateTime"),
    ("prefetch", "observations", "entry", 0, "resource", "status"),
    ("prefetch", "observations", "entry", 0, "resource", "resourceType"),
    ("prefetch", "procedures"), ("prefetch", "observations", "total"),
]


def replaced(path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    body = copy.deepcopy(BASE)
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


@pytest.fixture
def client(tmp_path, fhir_mock):
    settings_ = Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", demo_patients=False,
                         fhir_timeout_s=0.2, fhir_deadline_s=0.5)
    return make_app(settings_).test_client()


def assert_handled(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert response.is_json


def test_valid_base_request_is_answered(client) -> None:
    assert client.post(SERVICE, json=BASE).status_code == 200


@FUZZ
@given(path=st.sampled_from(TARGETS), value=json_values)
def test_any_member_replaced_by_any_json_is_handled(client, path, value) -> None:
    assert_handled(client.post(SERVICE, json=replaced(path, value)))


@FUZZ
@given(value=json_values)
def test_feedback_with_any_json_is_handled(client, value) -> None:
    assert_handled(client.post(SERVICE + "/feedback", json={"feedback": [value]}))
    assert_handled(client.post(SERVICE + "/feedback", json=value))


@FUZZ
@given(raw=st.binary(max_size=200) | odd_text.map(str.encode))
def test_arbitrary_bytes_are_handled(client, raw) -> None:
    assert_handled(client.post(SERVICE, data=raw, content_type="application/json"))


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_deep_nesting_is_a_400(client, depth) -> None:
    deep = "[" * depth + "]" * depth
    response = client.post(SERVICE, data=f'{{"hook": "patient-view", "context": {deep}}}',
                           content_type="application/json")
    assert response.status_code == 400


DEEP_MEMBERS = [
    ("extra",),  # a member the protocol does not define
    ("prefetch", "patient", "name"),
    ("prefetch", "conditions", "entry", 0, "resource", "evidence"),
    ("prefetch", "observations", "entry", 0, "resource", "extension"),
]


@pytest.mark.parametrize("path", DEEP_MEMBERS, ids=lambda p: "/".join(map(str, p)))
@pytest.mark.parametrize("depth", [65, 1_000])
def test_deep_nesting_outside_context_is_answered_up_to_the_parsers_limit(client, path, depth) -> None:
    """Only what the service walks (``context``, feedback) is held to 64 levels; it never
    recurses into the rest, so nesting there up to orjson's own limit still gets the cards."""
    marker = "__deep__"
    body = replaced(path, marker) if path[0] == "prefetch" else {**BASE, path[0]: marker}
    raw = json.dumps(body).replace(f'"{marker}"', "[" * depth + "]" * depth)
    response = client.post(SERVICE, data=raw, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.json["cards"]
    too_deep = json.dumps(body).replace(f'"{marker}"', "[" * 1_100 + "]" * 1_100)
    refused = client.post(SERVICE, data=too_deep, content_type="application/json")
    assert refused.status_code == 400 and "depth" in refused.get_data(as_text=True)


def test_huge_strings_are_handled(client) -> None:
    body = replaced(("context", "patientId"), "x" * 2_000_000)
    assert_handled(client.post(SERVICE, json=body))
    body = replaced(("prefetch", "patient", "id"), "\u0301" * 1_000_000)
    assert_handled(client.post(SERVICE, json=body))


def test_body_over_the_size_limit_is_a_413(client) -> None:
    response = client.post(SERVICE, data=json.dumps({"x": "y" * 6_000_000}),
                           content_type="application/json")
    assert response.status_code == 413


def test_numbers_as_strings_in_fhir_resources_are_handled(client) -> None:
    body = replaced(("prefetch", "observations", "entry", 0, "resource", "valueQuantity"),
                    {"value": "7", "unit": 5, "system": ["x"]})
    assert_handled(client.post(SERVICE, json=body))


def test_ten_thousand_entry_bundle_is_handled(client) -> None:
    entry = BASE["prefetch"]["observations"]["entry"][0]
    many = []
    for i in range(10_000):
        item = copy.deepcopy(entry)
        item["resource"]["id"] = f"sec-o{i}"
        many.append(item)
    body = replaced(("prefetch", "observations", "entry"), many)
    assert_handled(client.post(SERVICE, json=body))
