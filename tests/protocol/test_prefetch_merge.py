"""Prefetch keys (and pages) can return the same resource: it is evaluated once, by type and id,
the first copy kept. A resource whose type or id is not a string is never merged with another.
Any mix of keys, pages and ids must give what merging one record at a time gives.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from service.cdshooks.prefetch import resolve_prefetch
from service.cdshooks.request import parse_hook_request
from service.cdshooks.services import load_services
from service.cdshooks.sources import NoSource
from service.config import Settings
from service.fhir_client import FetchResult

PID = "merge-p1"
BASE = "https://ehr.example.org/fhir"
SERVICE = next(s for s in load_services(Settings().hooks_dir) if s.hook == "patient-view")


def _obs(ident: Any, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": ident, "status": "final",
            "subject": {"reference": f"Patient/{PID}"}, **fields}


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


@dataclass(frozen=True)
class NextPages:
    """A FHIR server holding the rest of a paged prefetch."""

    pages: dict[str, list[dict[str, Any]]]
    name: ClassVar[str] = "fhir"

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        return {key: FetchResult(resources=self.pages[key], pages=1) for key in queries}


def _resolved(source: Any = None, **prefetch: Any) -> list[dict[str, Any]]:
    """The resources of a call whose prefetch holds ``prefetch`` and null for every other key."""
    body = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": PID},
            "prefetch": dict.fromkeys(SERVICE.prefetch, None) | prefetch}
    request = parse_hook_request(body, SERVICE)
    return resolve_prefetch(SERVICE, request, source or NoSource()).resources


def test_distinct_resources_are_all_kept_in_order():
    records = [_obs(f"o{n}") for n in range(5)]
    assert _resolved(observations=_bundle(*records)) == records


def test_the_same_resource_twice_in_a_bundle_counts_once_the_first_kept():
    first, second = _obs("o1", note=[{"text": "first"}]), _obs("o1", note=[{"text": "second"}])
    assert _resolved(observations=_bundle(first, _obs("o2"), second)) == [first, _obs("o2")]


def test_a_resource_in_two_keys_counts_once():
    shared = {"resourceType": "Condition", "id": "c1", "subject": {"reference": f"Patient/{PID}"}}
    other = {**shared, "id": "c2"}
    assert _resolved(conditions=_bundle(shared, other), diagnosticReports=None) == [shared, other]
    assert _resolved(conditions=_bundle(shared), observations=_bundle(_obs("o1"))) == [
        shared, _obs("o1")]


def test_a_resource_on_the_next_page_too_counts_once_the_first_kept():
    first, again = _obs("o1", note=[{"text": "first"}]), _obs("o1", note=[{"text": "again"}])
    paged = {**_bundle(first), "link": [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]}
    source = NextPages({"observations": [again, _obs("o2")]})
    assert _resolved(source, observations=paged) == [first, _obs("o2")]


def test_a_resource_without_a_string_id_is_never_merged():
    odd = _obs(7)
    assert _resolved(observations=_bundle(odd, _obs(7), _obs("7"))) == [odd, _obs(7), _obs("7")]
    assert _resolved(observations=_bundle(_obs(["o1"]), _obs("o1"))) == [_obs(["o1"]), _obs("o1")]
    paged = {**_bundle(odd), "link": [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]}
    assert _resolved(NextPages({"observations": [_obs(7)]}), observations=paged) == [odd, _obs(7)]


def _one_at_a_time(bundles: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    merged: dict[Any, dict[str, Any]] = {}
    for resources in bundles:
        for r in resources:
            key = (r["resourceType"], r["id"]) if isinstance(r["id"], str) else id(r)
            merged.setdefault(key, r)
    return list(merged.values())


@pytest.mark.parametrize("seed", range(30))
def test_any_bundle_merges_as_one_record_at_a_time_would(seed):
    rng = random.Random(seed)
    ids = [f"o{n}" for n in range(8)] + [7, None, ["o1"]]

    def some() -> list[dict[str, Any]]:
        return [_obs(rng.choice(ids), note=[{"text": str(n)}]) for n in range(rng.randrange(0, 12))]

    first, second = some(), some()
    conditions = [dict(r, resourceType="Condition") for r in second]
    got = _resolved(observations=_bundle(*first), conditions=_bundle(*conditions))
    assert got == _one_at_a_time([conditions, first])  # conditions come first in the hook's prefetch
