"""Turn a hook request into the FHIR resources the rules read (PRE-07..09, FHIR-01..08).

Per prefetch key: a value the EHR sent is used as is; ``null`` means "no data"; a missing key or
an OperationOutcome means "fetch it". What has to be fetched comes from the demo patients (in
development), or from ``fhirServer`` with the EHR's token. If data the rules need cannot be had,
the caller gets a 412 naming the keys: guessing without the data could miss a red flag.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from service.cdshooks.errors import CdsError
from service.cdshooks.request import HookRequest
from service.cdshooks.services import TOKEN, CdsService
from service.engine.binding import exclusion
from service.fhir_client import FetchResult, FhirClient, FhirFetchError, bundle_resources, next_link

_USER_TYPE = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9\-./]+$")


@dataclass
class ResolvedData:
    """The resources for one hook call, and where each prefetch key's data came from."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # key -> prefetch | null | fhir | demo
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    # Records not evaluated, by reason (engine.binding.EXCLUSION_REASONS): never their ids.
    excluded: Counter[str] = field(default_factory=Counter)

    @property
    def fetched_keys(self) -> list[str]:
        return [k for k, s in self.sources.items() if s == "fhir"]


def render_template(template: str, request: HookRequest) -> str:
    """Fill ``{{context.x}}`` and ``{{userXxxId}}`` tokens; values are URL-quoted."""

    def value(match: re.Match[str]) -> str:
        token = match.group(1)
        if token in _USER_TYPE:
            kind, _, ident = (request.user_id or "").partition("/")
            raw = ident if kind == _USER_TYPE[token] else ""
        else:
            raw = request.context.get(token.removeprefix("context."), "")
        text = str(raw) if isinstance(raw, str | int) else ""
        return text if _SAFE_VALUE.match(text) else quote(text, safe="")

    return TOKEN.sub(value, template)


def _classify(value: Any) -> str:
    if value is None:
        return "null"
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return "invalid"
    if value["resourceType"] == "OperationOutcome":
        return "outcome"
    return "resource"


def asked_type(template: str) -> str | None:
    """The resource type a prefetch template or query asks for (``Condition?...``,
    ``Patient/{{context.patientId}}``, or an absolute next-page URL: unknown)."""
    head = re.split(r"[/?]", template, maxsplit=1)[0]
    return head if re.fullmatch(r"[A-Z][A-Za-z]+", head) else None


def _bound(resources: Iterable[dict[str, Any]], request: HookRequest, expected: str | None,
           data: ResolvedData) -> list[dict[str, Any]]:
    """Only the context patient's resources of the type the query asked for (§2.0.1)."""
    out = []
    for resource in resources:
        reason = exclusion(resource, request.patient_id, expected)
        if reason:
            data.excluded[reason] += 1
        else:
            out.append(resource)
    return out


def _merge(resources: Iterable[dict[str, Any]], into: dict[Any, dict[str, Any]]) -> None:
    """De-duplicate by type and id: several keys (and pages) may return the same resource."""
    for resource in resources:
        kind, ident = resource.get("resourceType"), resource.get("id")
        # Only well-formed type/id pairs de-duplicate; anything else is kept as it is, once.
        key = (kind, ident) if type(kind) is str and type(ident) is str else id(resource)
        if key not in into:
            into[key] = resource


DemoSource = Callable[[str], list[dict[str, Any]] | None]
FhirPolicy = Callable[[str], str | None]


def resolve_prefetch(
    service: CdsService,
    request: HookRequest,
    *,
    fhir: FhirClient | None,
    demo: DemoSource | None = None,
    fhir_policy: FhirPolicy | None = None,
) -> ResolvedData:
    """Collect the resources of every prefetch key, fetching what the EHR did not send."""
    data = ResolvedData()
    merged: dict[Any, dict[str, Any]] = {}
    supplied = request.prefetch or {}
    to_fetch: dict[str, str] = {}
    expected = {key: asked_type(template) for key, template in service.prefetch.items()}
    for key, template in service.prefetch.items():
        if key not in supplied:
            to_fetch[key] = render_template(template, request)
            continue
        value = supplied[key]
        kind = _classify(value)
        if kind == "null":
            data.sources[key] = "null"
        elif kind == "invalid":
            raise CdsError(400, f"`prefetch.{key}` must be a FHIR resource or null", field=f"prefetch.{key}")
        elif kind == "outcome":
            data.outcomes.append(value)
            to_fetch[key] = render_template(template, request)
        elif value["resourceType"] == "Bundle" and (rest := next_link(value)):
            # A paged prefetch: the rest must come from the server, or red flags could be missed.
            to_fetch[key] = rest
            resources, outcomes = bundle_resources(value)
            _merge(_bound(resources, request, expected[key], data), merged)
            data.outcomes.extend(outcomes)
        else:
            resources, outcomes = (
                bundle_resources(value) if value["resourceType"] == "Bundle" else ([value], [])
            )
            _merge(_bound(resources, request, expected[key], data), merged)
            data.outcomes.extend(outcomes)
            data.sources[key] = "prefetch"

    if to_fetch and demo is not None:
        demo_resources = demo(request.patient_id)
        if demo_resources is not None:
            _merge(_bound(demo_resources, request, None, data), merged)
            data.sources.update(dict.fromkeys(to_fetch, "demo"))
            to_fetch = {}

    if to_fetch:
        _fetch_missing(request, to_fetch, expected, fhir, fhir_policy, data, merged)
    data.resources = list(merged.values())
    return data


def _fetch_missing(
    request: HookRequest,
    queries: Mapping[str, str],
    expected: Mapping[str, str | None],
    fhir: FhirClient | None,
    fhir_policy: FhirPolicy | None,
    data: ResolvedData,
    merged: dict[Any, dict[str, Any]],
) -> None:
    keys = ", ".join(sorted(queries))
    if request.fhir_server is None or fhir is None:
        raise CdsError(
            412,
            f"prefetch keys not supplied and no fhirServer to fetch them from: {keys}",
            field="prefetch",
            code="processing",
        )
    refusal = fhir_policy(request.fhir_server) if fhir_policy else None
    if refusal:
        raise CdsError(
            412, f"cannot fetch prefetch keys {keys}: {refusal}", field="fhirServer", code="processing"
        )
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    results = fhir.fetch_all(request.fhir_server, queries, token, url_check=fhir_policy)
    failures: list[tuple[str | None, str]] = []
    for key in sorted(results):
        result = results[key]
        if isinstance(result, FhirFetchError):
            failures.append((f"prefetch.{key}", f"could not fetch `{key}` from fhirServer: {result}"))
            continue
        assert isinstance(result, FetchResult)
        _merge(_bound(result.resources, request, expected[key], data), merged)
        data.outcomes.extend(result.outcomes)
        data.sources[key] = "fhir"
    if failures:
        raise CdsError(412, failures[0][1], code="processing", issues=failures)
