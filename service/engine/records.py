"""Where a finding is recorded: the resource, its components, its contained resources, its value.

Clinical reference §2.0.1: a finding may be the Observation's code, a ``component``, a member of
a panel (``hasMember``), the coded value of a generic question (a flowsheet row whose value is
the finding), or a contained resource referenced from a Condition's ``evidence``. Each place is
given as a record of its own, with the container's subject and date where it has none. A
contained resource naming another patient is never this patient's record (§2.0.1): its place is
given as ANOTHER_PATIENT, for the caller to count as excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from service.engine.binding import local_reference, references, subject_reference

VALUE_KEYS = frozenset({"valueCodeableConcept", "valueBoolean", "valueString", "valueQuantity",
                        "valueInteger", "interpretation", "dataAbsentReason"})
SUBJECT_KEYS = ("subject", "patient")
DATE_KEYS = ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued",
             "onsetDateTime", "onsetPeriod", "recordedDate")
_CONTAINER_ONLY = frozenset({"component", "contained", "hasMember", "evidence"})
#: The record given for a contained resource of another patient (compared by identity).
ANOTHER_PATIENT: Mapping[str, Any] = MappingProxyType({})


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id', '?')}"


def _evidence_refs(resource: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for item in resource.get("evidence") or []:
        if isinstance(item, dict):
            found |= references(item, "detail")
    return frozenset(found)


def _inherit(child: dict[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    """A contained resource is about the container's patient; undated, it has its date."""
    for key in (*SUBJECT_KEYS, "status"):
        if key in parent:
            child.setdefault(key, parent[key])
    if not any(k in child for k in DATE_KEYS):
        child.update({k: parent[k] for k in DATE_KEYS if k in parent})
    return child


def _bare(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in VALUE_KEYS and k not in _CONTAINER_ONLY}


def places(resource: Mapping[str, Any], coded: Callable[[Any], bool],
           ref: str | None = None) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(ref, record) for the resource and every place inside it that can hold a finding.

    ``coded(concept)`` says whether a CodeableConcept holds a code the rules use; a flowsheet
    value that does not is not worth a record.
    """
    ref = ref or _ref(resource)
    yield ref, resource
    if resource.get("resourceType") == "Observation":
        for i, comp in enumerate(resource.get("component") or []):
            if isinstance(comp, dict) and isinstance(comp.get("code"), dict):
                yield f"{ref}#component-{i + 1}", {**_bare(resource), **comp}
        value = resource.get("valueCodeableConcept")
        if isinstance(value, dict) and coded(value):
            row = _bare(resource)
            row.update({k: resource[k] for k in ("interpretation", "dataAbsentReason")
                        if k in resource})
            yield f"{ref}#value", {**row, "code": value}
    contained = resource.get("contained")
    if not isinstance(contained, list) or not contained:
        return
    wanted = references(resource, "hasMember") | _evidence_refs(resource)
    for inner in contained:
        if isinstance(inner, dict) and f"#{inner.get('id')}" in wanted:
            where = f"{ref}#{inner.get('id')}"
            if _patient(inner) not in (None, _patient(resource)):
                yield where, ANOTHER_PATIENT
            else:
                yield from places(_inherit(dict(inner), resource), coded, where)


def _patient(resource: Mapping[str, Any]) -> str | None:
    written = subject_reference(resource)
    return local_reference(written) if written is not None else None
