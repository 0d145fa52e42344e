"""Parse and check a CDS Hooks 2.0 service request before any work is done on it.

Every rejection names the offending member (``context.selections[1]``) in an OperationOutcome,
so the EHR integrator sees what to fix instead of an empty card list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.cdshooks.errors import CdsError, echo
from service.cdshooks.services import CdsService
from service.engine.binding import FHIR_ID, REFERENCE, draft_exclusion
from service.engine.hooks import HOOKS
from service.security.json_limits import DEFAULT_MAX_DEPTH, json_too_deep

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: An absolute http(s) URL with a host and no white space (openapi.yaml states the same pattern).
FHIR_SERVER = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")
MAX_DEPTH = DEFAULT_MAX_DEPTH
MAX_URL_CHARS = 2048
MAX_DRAFT_ORDERS = 500
#: Skipped draft orders named in the answer; the rest are counted.
MAX_SKIPS_ECHOED = 20


@dataclass(frozen=True)
class FhirAuthorization:
    """The EHR's access token for ``fhirServer``; never logged, never stored."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: dict[str, Any]
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None
    prefetch: dict[str, Any] | None = None
    draft_orders: list[dict[str, Any]] = field(default_factory=list)
    skipped_draft_orders: list[str] = field(default_factory=list)

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]

    @property
    def user_id(self) -> str | None:
        return self.context.get("userId")

    @property
    def selections(self) -> list[str]:
        return list(self.context.get("selections") or [])


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body; 400 for anything that is not JSON.

    orjson itself refuses nesting past 1024 levels; the parts the service walks or echoes
    (``context``, feedback) get the stricter depth check where they are parsed.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CdsError(400, f"request body is not valid JSON: {exc}", code="structure") from None
    return data


def _string(body: Mapping[str, Any], name: str, where: str = "") -> str:
    value = body.get(name)
    if value is None:
        raise CdsError(400, f"`{where}{name}` is required", field=f"{where}{name}", code="required")
    if not isinstance(value, str) or not value.strip():
        raise CdsError(400, f"`{where}{name}` must be a non-empty string", field=f"{where}{name}")
    return value


def _authorization(value: Any) -> FhirAuthorization:
    """CDS Hooks 2.0 §Passing the Access Token: five members required, ``patient`` optional;
    members it does not define are ignored (an OAuth token answer may carry more)."""
    where = "fhirAuthorization."
    if not isinstance(value, dict):
        raise CdsError(400, "`fhirAuthorization` must be an object", field="fhirAuthorization")
    token = _string(value, "access_token", where)
    if _string(value, "token_type", where).lower() != "bearer":  # RFC 6749: case-insensitive
        raise CdsError(400, "`fhirAuthorization.token_type` must be `Bearer`", field=f"{where}token_type")
    expires_in = value.get("expires_in")
    if expires_in is None:
        raise CdsError(400, "`fhirAuthorization.expires_in` is required", field=f"{where}expires_in",
                       code="required")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 0:
        raise CdsError(400, "`fhirAuthorization.expires_in` must be a whole number of seconds (0 or more)",
                       field=f"{where}expires_in")
    scope, subject = _string(value, "scope", where), _string(value, "subject", where)
    patient = value.get("patient")
    if patient is not None and (not isinstance(patient, str) or not FHIR_ID.fullmatch(patient)):
        raise CdsError(400, "`fhirAuthorization.patient` must be a bare FHIR id", field=f"{where}patient")
    return FhirAuthorization(access_token=token, token_type="Bearer", scope=scope, subject=subject,
                             patient=patient, expires_in=expires_in)


def _draft_orders(bundle: Any, patient_id: str | None) -> tuple[list[dict[str, Any]], list[str], set[str]]:
    """Resources of a draftOrders Bundle, the entries skipped, and the reference of every
    well-formed draft. Malformed entries, and drafts of another patient
    (``binding.draft_exclusion``, §2.0.1), are skipped and named, not fatal.

    The answer names the first skipped entries and counts the rest, so a request of malformed
    entries cannot make the answer larger than the request.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise CdsError(400, "`context.draftOrders` must be a FHIR Bundle", field="context.draftOrders")
    entries = bundle.get("entry")
    entries = [] if entries is None else entries
    if not isinstance(entries, list):
        raise CdsError(400, "`context.draftOrders.entry` must be an array", field="context.draftOrders.entry")
    if len(entries) > MAX_DRAFT_ORDERS:
        raise CdsError(
            400,
            f"`context.draftOrders.entry` holds {len(entries)} entries; at most {MAX_DRAFT_ORDERS} are read",
            field="context.draftOrders.entry",
        )
    orders, skipped, drafted = [], [], set()
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if (
            isinstance(resource, dict)
            and isinstance(resource.get("resourceType"), str)
            and isinstance(resource.get("id"), str)
            and FHIR_ID.fullmatch(resource["id"])
        ):
            drafted.add(f"{resource['resourceType']}/{resource['id']}")
            if not draft_exclusion(resource, patient_id):
                orders.append(resource)
                continue
        skipped.append(f"context.draftOrders.entry[{i}]")
    if len(skipped) > MAX_SKIPS_ECHOED:
        skipped[MAX_SKIPS_ECHOED:] = [f"and {len(skipped) - MAX_SKIPS_ECHOED} more entries"]
    return orders, skipped, drafted


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and REFERENCE.fullmatch(value) is not None


#: Per context field kind: what a valid value is, and what the 400 says otherwise. A ``bundle``
#: (draftOrders) is read entry by entry in ``_draft_orders``.
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (lambda v: isinstance(v, str) and FHIR_ID.fullmatch(v) is not None,
           "must be a bare FHIR id (no `/`)"),
    "reference": (_is_reference, "must be a reference like `Practitioner/123`"),
    "references": (lambda v: isinstance(v, list) and bool(v) and all(map(_is_reference, v)),
                   "must be a non-empty array of `Type/id` references"),
}


def _check_context(spec_name: str, context: dict[str, Any]) -> None:
    spec = HOOKS[spec_name]
    if "draftOrders" in context and all(f.name != "draftOrders" for f in spec.fields):
        raise CdsError(
            400, f"`context.draftOrders` is not part of the {spec_name} context", field="context.draftOrders"
        )
    for f in spec.fields:
        value = context.get(f.name)
        where = f"context.{f.name}"
        if value is None:
            if f.required:
                raise CdsError(400, f"`{where}` is required for {spec_name}", field=where, code="required")
            continue
        valid, message = _KINDS.get(f.kind, (None, ""))
        if valid is not None and not valid(value):
            raise CdsError(400, f"`{where}` {message}", field=where)


def _envelope(body: Any, service: CdsService) -> tuple[str, str]:
    """``hook`` and ``hookInstance``: present, well formed, and the hook this service answers."""
    if not isinstance(body, dict):
        raise CdsError(400, "request body must be a JSON object", code="structure")
    hook = _string(body, "hook")
    hook_instance = _string(body, "hookInstance")
    if not UUID.fullmatch(hook_instance):
        raise CdsError(400, "`hookInstance` must be a UUID", field="hookInstance")
    if hook != service.hook:
        raise CdsError(
            400, f"`hook` is `{echo(hook)}` but service `{service.id}` answers `{service.hook}`", field="hook"
        )
    return hook, hook_instance


def _context(body: dict[str, Any], hook: str) -> dict[str, Any]:
    context = body.get("context")
    if context is None:
        raise CdsError(400, "`context` is required", field="context", code="required")
    if not isinstance(context, dict):
        raise CdsError(400, "`context` must be an object", field="context")
    if json_too_deep(context, MAX_DEPTH):
        raise CdsError(400, f"`context` nests deeper than {MAX_DEPTH} levels", field="context")
    _check_context(hook, context)
    return context


def _fhir_access(body: dict[str, Any]) -> tuple[str | None, FhirAuthorization | None]:
    """``fhirServer`` (without a trailing slash) and the access token that goes with it."""
    fhir_server = body.get("fhirServer")
    if isinstance(fhir_server, str) and len(fhir_server) > MAX_URL_CHARS:
        raise CdsError(400, f"`fhirServer` is longer than {MAX_URL_CHARS} characters", field="fhirServer")
    if fhir_server is not None and not (isinstance(fhir_server, str) and FHIR_SERVER.fullmatch(fhir_server)):
        raise CdsError(400, "`fhirServer` must be an absolute http(s) URL with a host", field="fhirServer")
    authorization = None
    if body.get("fhirAuthorization") is not None:
        if fhir_server is None:
            raise CdsError(
                400, "`fhirAuthorization` requires `fhirServer`", field="fhirServer", code="required"
            )
        authorization = _authorization(body["fhirAuthorization"])
    return (fhir_server.rstrip("/") if fhir_server else None), authorization


def _orders(context: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The draft orders read, the entries skipped; every selection must be one of the orders."""
    if "draftOrders" not in context:
        return [], []
    orders, skipped, drafted = _draft_orders(context["draftOrders"], context.get("patientId"))
    for i, ref in enumerate(context.get("selections") or []):
        if ref not in drafted:
            raise CdsError(
                400, f"selection `{ref}` is not in `context.draftOrders`", field=f"context.selections[{i}]"
            )
    return orders, skipped


def _prefetch(body: dict[str, Any]) -> dict[str, Any] | None:
    """Each value a FHIR resource (a Bundle, an OperationOutcome for a failed query) or null."""
    prefetch = body.get("prefetch")
    if prefetch is None:
        return None
    if not isinstance(prefetch, dict):
        raise CdsError(400, "`prefetch` must be an object", field="prefetch")
    for key, value in prefetch.items():
        if value is not None and not (isinstance(value, dict) and isinstance(value.get("resourceType"), str)
                                      and value["resourceType"]):
            where = f"prefetch.{echo(key)}"
            raise CdsError(400, f"`{where}` must be a FHIR resource or null", field=where)
    return prefetch


def parse_hook_request(body: Any, service: CdsService) -> HookRequest:
    """Validate a decoded request body against CDS Hooks 2.0 and the service's hook.

    Members CDS Hooks 2.0 does not define are ignored, as are unknown extensions (REQ-09)."""
    hook, hook_instance = _envelope(body, service)
    context = _context(body, hook)
    fhir_server, authorization = _fhir_access(body)
    prefetch = _prefetch(body)
    if body.get("extension") is not None and not isinstance(body["extension"], dict):
        raise CdsError(400, "`extension` must be an object", field="extension")
    orders, skipped = _orders(context)
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        context=context,
        fhir_server=fhir_server,
        fhir_authorization=authorization,
        prefetch=prefetch,
        draft_orders=orders,
        skipped_draft_orders=skipped,
    )
