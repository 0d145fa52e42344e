"""Turn a hook request into the FHIR resources the rules read (PRE-07..09, FHIR-01..08).

Per prefetch key: a value the EHR sent is used as is; ``null`` means "no data"; a missing key or
an OperationOutcome means "fetch it". What has to be fetched comes from the one data source the
caller bound for this call (``cdshooks.sources``). If data the rules need cannot be had, the
caller gets a 412 naming the keys: guessing without the data could miss a red flag.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from service.cdshooks.errors import CdsError
from service.cdshooks.hooks import USER_TOKENS
from service.cdshooks.request import HookRequest
from service.cdshooks.services import TOKEN, CdsService
from service.cdshooks.sources import DataSource, asked_type
from service.engine.binding import bound
from service.fhir_client import MalformedBundle, bundle_resources, next_link

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
        if token in USER_TOKENS:
            kind, _, ident = (request.user_id or "").partition("/")
            raw = ident if kind == USER_TOKENS[token] else ""
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


def _keep(resources: Iterable[dict[str, Any]], request: HookRequest, expected: str | None,
          data: ResolvedData, into: dict[Any, dict[str, Any]]) -> None:
    """Only the context patient's resources of the type the query asked for (§2.0.1), each
    once by type and id: several keys (and pages) may return the same resource."""
    for resource in bound(resources, request.patient_id, expected, data.excluded):
        kind, ident = resource.get("resourceType"), resource.get("id")
        # Only well-formed type/id pairs de-duplicate; anything else is kept as it is, once.
        key = (kind, ident) if type(kind) is str and type(ident) is str else id(resource)
        if key not in into:
            into[key] = resource


def _contents(key: str, value: dict[str, Any]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(resources, outcomes, next page) of one prefetch value; a Bundle that cannot be read
    whole is a 400 naming its member."""
    if value["resourceType"] != "Bundle":
        return [value], [], None
    try:
        return (*bundle_resources(value), next_link(value))
    except MalformedBundle as exc:
        where = f"prefetch.{key}.{exc.member}"
        raise CdsError(400, f"`{where}` {exc.problem}", field=where) from None


def resolve_prefetch(service: CdsService, request: HookRequest, source: DataSource) -> ResolvedData:
    """Collect the resources of every prefetch key, reading what the EHR did not send from ``source``."""
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
        else:
            resources, outcomes, rest = _contents(key, value)
            _keep(resources, request, expected[key], data, merged)
            data.outcomes.extend(outcomes)
            if rest:  # a paged prefetch: the rest must come from the server, or red flags could be missed
                to_fetch[key] = rest
            else:
                data.sources[key] = "prefetch"

    if to_fetch:
        fetched = source.fetch(to_fetch)
        for key in sorted(fetched):
            _keep(fetched[key].resources, request, expected[key], data, merged)
            data.outcomes.extend(fetched[key].outcomes)
        data.sources.update(dict.fromkeys(to_fetch, source.name))
    data.resources = list(merged.values())
    return data
