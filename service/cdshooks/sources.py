"""Where the prefetch keys the EHR did not send are read from, bound once per hook call.

The caller (the web view, the CLI) builds one source for the request: a demo patient in
development, the request's ``fhirServer`` with its access token and the server policy, or none.
Prefetch resolution then only asks it for the missing queries and never sees tokens or policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from service import fixtures
from service.cdshooks.errors import CdsError
from service.cdshooks.request import HookRequest
from service.fhir_client import FetchResult, FhirClient, FhirFetchError

FhirPolicy = Callable[[str], str | None]
"""None if the access token may go to this URL, else the reason why not."""


class DataSource(Protocol):
    """Answers the missing prefetch queries of one hook call, key by key, or raises a 412
    CdsError."""

    name: ClassVar[str]  # shown per key in the response's ``dataSources``

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]: ...


def asked_type(template: str) -> str | None:
    """The resource type a prefetch template or query asks for (``Condition?...``,
    ``Patient/{{context.patientId}}``, or an absolute next-page URL: unknown)."""
    head = re.split(r"[/?]", template, maxsplit=1)[0]
    return head if re.fullmatch(r"[A-Z][A-Za-z]+", head) else None


def _keys(queries: Mapping[str, str]) -> str:
    return ", ".join(sorted(queries))


@dataclass(frozen=True)
class NoSource:
    """No demo patient and no ``fhirServer``: missing data cannot be had."""

    name: ClassVar[str] = "none"

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        raise CdsError(
            412,
            f"prefetch keys not supplied and no fhirServer to fetch them from: {_keys(queries)}",
            field="prefetch",
            code="processing",
        )


def _by_type(record: Sequence[dict[str, Any]], queries: Mapping[str, str]) -> dict[str, FetchResult]:
    """Each query answered from a whole record with the resources of the type it asks for."""
    return {
        key: FetchResult([r for r in record if kind is None or r.get("resourceType") == kind])
        for key, query in queries.items()
        for kind in (asked_type(query),)
    }


@dataclass(frozen=True)
class DemoPatient:
    """A synthetic demo patient's record, dates rendered against the call's ``now``, answering
    each query with the record's resources of the type it asks for, as a FHIR server would."""

    name: ClassVar[str] = "demo"
    fixtures_dir: str | Path
    patient_id: str
    now: datetime

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        return _by_type(fixtures.demo_resources(self.fixtures_dir, self.patient_id, self.now) or [],
                        queries)


@dataclass(frozen=True)
class HeldRecord:
    """A patient's record already in memory (a replayed population), answered like a demo
    patient."""

    name: ClassVar[str] = "demo"
    resources: Sequence[dict[str, Any]]

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        return _by_type(self.resources, queries)


@dataclass(frozen=True)
class FhirServer:
    """The request's ``fhirServer``, its access token, and the policy every URL is vetted by."""

    name: ClassVar[str] = "fhir"
    client: FhirClient
    base: str
    token: str | None = field(repr=False)
    policy: FhirPolicy

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        refusal = self.policy(self.base)
        if refusal:
            raise CdsError(
                412,
                f"cannot fetch prefetch keys {_keys(queries)}: {refusal}",
                field="fhirServer",
                code="processing",
            )
        results = self.client.fetch_all(self.base, queries, self.token, url_check=self.policy)
        fetched: dict[str, FetchResult] = {}
        failures: list[tuple[str | None, str]] = []
        for key in sorted(results):
            result = results[key]
            if isinstance(result, FhirFetchError):
                failures.append((f"prefetch.{key}", f"could not fetch `{key}` from fhirServer: {result}"))
            else:
                fetched[key] = result
        if failures:
            raise CdsError(412, failures[0][1], code="processing", issues=failures)
        return fetched


def bind_source(
    request: HookRequest,
    *,
    now: datetime,
    fhir: FhirClient | None,
    policy: FhirPolicy,
    demo_dir: str | Path | None = None,
) -> DataSource:
    """The one source this call reads missing data from.

    A demo patient (``demo_dir`` given, development only) answers for its own id; any other
    patient goes to ``fhirServer``.
    """
    if demo_dir is not None and request.patient_id in fixtures.demo_patient_files(demo_dir):
        return DemoPatient(demo_dir, request.patient_id, now)
    if request.fhir_server is None or fhir is None:
        return NoSource()
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    return FhirServer(fhir, request.fhir_server, token, policy)
