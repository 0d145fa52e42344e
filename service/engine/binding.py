"""Whose record, and which record a reference means (clinical reference §2.0.1).

A resource counts only when its ``subject`` (or ``patient``) is the context patient, written
``Patient/<id>`` or as an absolute URL ending in it (a ``/_history/<n>`` tail allowed). The one
FHIR id pattern of the service lives here too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# Use with fullmatch: `$` would also accept a trailing newline.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
REFERENCE = re.compile(rf"[A-Za-z]+/{FHIR_ID.pattern}")

# Why a record was not evaluated: a fixed set, used as a metric label.
OTHER_PATIENT = "other-patient"
NO_PATIENT_REFERENCE = "no-patient-reference"
WRONG_RESOURCE_TYPE = "wrong-resource-type"
UNREADABLE = "unreadable"
EXCLUSION_REASONS = (OTHER_PATIENT, NO_PATIENT_REFERENCE, WRONG_RESOURCE_TYPE, UNREADABLE)

_HISTORY = re.compile(r"/_history/[^/]+$")


def local_reference(reference: str) -> str:
    """``https://ehr/fhir/Procedure/7`` and ``Procedure/7/_history/2`` -> ``Procedure/7``;
    ``#7`` stays ``#7`` (a contained resource)."""
    text = _HISTORY.sub("", reference.strip())
    if text.startswith("#"):
        return text
    parts = text.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else text


def references(resource: Mapping[str, Any], name: str) -> frozenset[str]:
    """The local form of every reference in ``resource[name]`` (one or a list)."""
    refs = resource.get(name) or []
    if isinstance(refs, dict):
        refs = [refs]
    if not isinstance(refs, list):
        return frozenset()
    return frozenset(local_reference(r["reference"]) for r in refs
                     if isinstance(r, dict) and isinstance(r.get("reference"), str))


def subject_reference(resource: Mapping[str, Any]) -> str | None:
    """The reference written to the patient a resource is about (``subject``, else
    ``patient``), or None when it names none."""
    target = resource.get("subject") or resource.get("patient")
    if isinstance(target, dict) and isinstance(target.get("reference"), str):
        return target["reference"]
    return None


def exclusion(resource: Mapping[str, Any], patient_id: str | None,
              expected_type: str | None = None) -> str | None:
    """Why ``resource`` must not be evaluated for ``patient_id`` (None: it may)."""
    rtype = resource.get("resourceType")
    if expected_type is not None and rtype != expected_type:
        return WRONG_RESOURCE_TYPE
    if patient_id is None:
        return None
    if rtype == "Patient":
        return None if resource.get("id") == patient_id else OTHER_PATIENT
    written = subject_reference(resource)
    if written is None:
        return NO_PATIENT_REFERENCE
    wanted = f"Patient/{patient_id}"
    return None if written == wanted or local_reference(written) == wanted else OTHER_PATIENT


def draft_exclusion(draft: Mapping[str, Any], patient_id: str | None) -> str | None:
    """Why a draft order must not be evaluated for ``patient_id``: only when it names another
    patient. A draft being written may not name its patient yet, and is the context patient's."""
    return OTHER_PATIENT if exclusion(draft, patient_id) == OTHER_PATIENT else None


def bound(resources: Iterable[dict[str, Any]], patient_id: str, expected_type: str | None,
          excluded: Counter[str]) -> Iterator[dict[str, Any]]:
    """The resources that may be evaluated for ``patient_id``; each other one is counted in
    ``excluded`` by its reason.

    A whole Bundle in one loop: nearly every record is of the type asked for, with its subject
    written exactly ``Patient/<id>``, and is taken at once; any other is judged by ``exclusion``.
    """
    wanted = f"Patient/{patient_id}"
    for resource in resources:
        kind = resource.get("resourceType")
        target = resource.get("subject") or resource.get("patient")
        if type(target) is dict and target.get("reference") == wanted and kind != "Patient" \
                and (expected_type is None or kind == expected_type):
            yield resource
        elif reason := exclusion(resource, patient_id, expected_type):
            excluded[reason] += 1
        else:
            yield resource
