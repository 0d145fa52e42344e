"""What each supported hook puts in ``context`` (CDS Hooks Library 1.0.1).

Kept as data so the rule language (which hooks a rule or condition may name), request
validation and prefetch-token checks read from this one table. It lives in the engine, the
lowest layer that needs it, so the protocol layer imports it and never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContextField:
    name: str
    required: bool
    prefetch_token: bool
    kind: str  # "id" (bare FHIR id), "reference" (Type/id), "bundle", "references"


@dataclass(frozen=True)
class HookSpec:
    name: str
    fields: tuple[ContextField, ...]

    @property
    def token_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.prefetch_token)


_USER = ContextField("userId", True, True, "reference")
_PATIENT = ContextField("patientId", True, True, "id")
_ENCOUNTER = ContextField("encounterId", False, True, "id")
_DRAFTS = ContextField("draftOrders", True, False, "bundle")

HOOKS: dict[str, HookSpec] = {spec.name: spec for spec in (
    HookSpec("patient-view", (_USER, _PATIENT, _ENCOUNTER)),
    HookSpec("encounter-start", (_USER, _PATIENT, ContextField("encounterId", True, True, "id"))),
    HookSpec("order-select",
             (_USER, _PATIENT, _ENCOUNTER, ContextField("selections", True, False, "references"), _DRAFTS)),
    HookSpec("order-sign", (_USER, _PATIENT, _ENCOUNTER, _DRAFTS)),
)}
