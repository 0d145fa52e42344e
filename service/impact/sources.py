"""Where the patients of an impact run come from: demo fixtures, Bundles, NDJSON, a FHIR server.

Every source yields ``PatientRecord`` values one at a time; none reads a whole population into
memory. ``open_source`` picks the kind from the argument: ``demo``, an ``http(s)://`` FHIR base
URL, or a directory (NDJSON when it holds ``*.ndjson`` files, FHIR Bundles otherwise).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from service import fixtures
from service.cdshooks.prefetch import render_template
from service.cdshooks.request import HookRequest
from service.cdshooks.services import CdsService
from service.fhir_client import FetchResult, FhirClient, bundle_resources, next_link
from service.fhir_spec import FHIR_JSON
from service.impact.calls import PatientRecord
from service.impact.ndjson import NdjsonIndex, patient_of
from service.yamlsource import load_yaml

DEMO = "demo"
ORDER_REQUESTS = "order_requests.yaml"  # which demo patients have which draft orders
LISTING_PAGE = 100


@dataclass
class Source:
    """A named stream of patients; ``total`` when it is known before the run."""

    description: str
    records: Iterator[PatientRecord]
    total: int | None = None


def _demo_drafts(fixtures_dir: Path, now: datetime) -> dict[str, dict[str, dict[str, Any]]]:
    """Patient id -> {order request name: its draftOrders Bundle}, from ``order_requests.yaml``."""
    ids = {file.stem: patient_id for patient_id, file in fixtures.demo_patient_files(fixtures_dir).items()}
    listing = fixtures_dir / ORDER_REQUESTS
    specs = load_yaml(listing).data.get("orders") if listing.exists() else []
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in specs or []:
        name, slug = spec["request"], spec["patient"]
        if slug not in ids:
            raise ValueError(f"{listing}: order request {name} names no demo patient {slug!r}")
        drafts = fixtures.read_json(fixtures_dir / "drafts" / f"{name}.json")
        fixtures.expect_type(drafts, "Bundle", f"drafts/{name}.json")
        out.setdefault(ids[slug], {})[name] = fixtures.render(drafts, now, source=f"drafts/{name}.json")
    return out


def demo_records(fixtures_dir: Path, now: datetime) -> Iterator[PatientRecord]:
    """The bundled demo patients, dates rendered at ``now``, each with its fixture drafts."""
    drafts = _demo_drafts(fixtures_dir, now)
    for patient_id, file in sorted(fixtures.demo_patient_files(fixtures_dir).items()):
        resources = fixtures.bundle_resources(fixtures.load_bundle(file, now))
        yield PatientRecord(patient_id, resources, drafts.get(patient_id, {}))


def _grouped(bundle: Mapping[str, Any], source: str) -> Iterator[PatientRecord]:
    resources = fixtures.bundle_resources(bundle)
    patients = [r["id"] for r in resources
                if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str)]
    if not patients:
        raise ValueError(f"{source}: the Bundle holds no Patient with an id")
    if len(patients) == 1:
        yield PatientRecord(patients[0], resources)
        return
    for patient_id in patients:
        yield PatientRecord(patient_id, [r for r in resources if patient_of(r) == patient_id])


def bundle_records(directory: Path, now: datetime) -> Iterator[PatientRecord]:
    """Every ``*.json`` Bundle under ``directory``, one file in memory at a time."""
    files = sorted(directory.rglob("*.json"))
    if not files:
        raise ValueError(f"{directory}: no *.json FHIR Bundles")
    for file in files:
        yield from _grouped(fixtures.load_bundle(file, now), str(file))


def ndjson_records(index: NdjsonIndex) -> Iterator[PatientRecord]:
    for patient_id, resources in index.patients():
        if not any(r.get("resourceType") == "Patient" for r in resources):
            resources = [{"resourceType": "Patient", "id": patient_id}, *resources]
        yield PatientRecord(patient_id, resources)


def _patient_ids(session: requests.Session, base_url: str, token: str | None,
                 timeout_s: float) -> Iterator[str]:
    """Every Patient id on the server, page by page (only same-origin next links)."""
    base = base_url.rstrip("/") + "/"
    url: str | None = urljoin(base, f"Patient?_count={LISTING_PAGE}")
    headers = {"Accept": FHIR_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    while url:
        if urlsplit(url).netloc != urlsplit(base).netloc:
            raise ValueError("the FHIR server's next link points to another server; not followed")
        try:
            response = session.get(url, headers=headers, timeout=timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            raise ValueError(f"FHIR server unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise ValueError(f"FHIR server answered {response.status_code} to the Patient search")
        page = response.json()
        for resource in bundle_resources(page)[0]:
            if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
                yield resource["id"]
        link = next_link(page)
        url = urljoin(base, link) if link else None


def fhir_records(base_url: str, token: str | None, services: list[CdsService],
                 client: FhirClient) -> Iterator[PatientRecord]:
    """Each patient's data read with the services' own prefetch queries, as the fallback does."""
    templates = {k: v for s in services for k, v in s.prefetch.items()}
    for patient_id in _patient_ids(client.session, base_url, token, client.timeout_s):
        request = HookRequest(hook="patient-view", hook_instance="", context={"patientId": patient_id})
        queries = {key: render_template(t, request) for key, t in templates.items()}
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for key, result in sorted(client.fetch_all(base_url, queries, token).items()):
            if not isinstance(result, FetchResult):
                raise ValueError(f"patient {patient_id}: could not read `{key}`: {result}")
            for resource in result.resources:
                merged.setdefault((resource.get("resourceType"), resource.get("id")), resource)
        yield PatientRecord(patient_id, list(merged.values()))


@contextmanager
def open_source(spec: str, *, fixtures_dir: Path, now: datetime, services: list[CdsService],
                token: str | None = None) -> Iterator[Source]:
    """The source named by ``spec``; resources it holds (index, connections) closed on exit."""
    if spec == DEMO:
        count = len(fixtures.demo_patient_files(fixtures_dir))
        yield Source(f"demo patients ({fixtures_dir})", demo_records(fixtures_dir, now), count)
        return
    if spec.startswith(("http://", "https://")):
        client = FhirClient(timeout_s=30.0, deadline_s=120.0, page_cap=100, max_workers=6)
        try:
            yield Source(f"FHIR server {spec}", fhir_records(spec, token, services, client))
        finally:
            client.close()
        return
    directory = Path(spec)
    if not directory.is_dir():
        raise ValueError(f"--patients {spec}: not `demo`, an http(s) FHIR base URL or a directory")
    if not any(directory.glob("*.ndjson")):
        yield Source(f"FHIR Bundles in {directory}", bundle_records(directory, now))
        return
    with tempfile.TemporaryDirectory(prefix="spinehip-ndjson-") as tmp:
        index = NdjsonIndex(directory, Path(tmp) / "index.sqlite3")
        try:
            yield Source(f"Bulk FHIR NDJSON in {directory}", ndjson_records(index),
                         index.patient_count)
        finally:
            index.close()
