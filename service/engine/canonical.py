"""The same code, written differently, is the same code (clinical reference §2.0.1).

System URIs are reduced to the canonical URI the rule files use (trailing slash, HL7 OIDs, WHO
ICD-10 for ICD-10-CM where the code is the same); ICD-10-CM codes to their tabular spelling
(upper case, dot after the category, no whitespace); codes retired from ICD-10-CM to their
successor. Cached: a record repeats the same few codings many times.
"""

from __future__ import annotations

from functools import lru_cache

from service.engine.codes import (
    CPT,
    ICD10CM,
    LOINC,
    OBSERVATION_INTERPRETATION,
    SNOMED,
    YES_NO,
)

SYSTEM_URI_ALIASES: dict[str, str] = {
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "http://hl7.org/fhir/sid/icd-10": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.3": ICD10CM,  # WHO ICD-10 by its OID, as by its URL
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "http://hl7.org/fhir/v3/ObservationInterpretation": OBSERVATION_INTERPRETATION,
    "http://hl7.org/fhir/v2/0136": YES_NO,
}

# Retired ICD-10-CM codes still found in older records -> the successor they count as.
# M54.5 Low back pain became a header in October 2021 (M54.50, M54.51, M54.59).
RETIRED_ICD10CM: dict[str, str] = {"M54.5": "M54.50"}


@lru_cache(maxsize=4096)
def canonical_system(system: str) -> str:
    text = system.strip().rstrip("/")
    return SYSTEM_URI_ALIASES.get(text.lower(), SYSTEM_URI_ALIASES.get(text, text))


def icd10cm_spelling(code: str) -> str:
    """``g834`` / `` G83.4 `` -> ``G83.4``."""
    text = "".join(code.split()).upper().replace(".", "")
    if len(text) > 3:
        text = f"{text[:3]}.{text[3:]}"
    return RETIRED_ICD10CM.get(text, text)


@lru_cache(maxsize=16384)
def canonical(system: str, code: str) -> tuple[str, str]:
    """(system, code) as the rule files write it."""
    uri = canonical_system(system)
    if uri == ICD10CM:
        return uri, icd10cm_spelling(code)
    return uri, code.strip()


def in_family(code: str, family: str) -> bool:
    """Is the canonical ICD-10-CM ``code`` in ``family`` (``Z85`` or a range ``M16.2-M16.9``)?"""
    low, _, high = family.partition("-")
    high = high or low
    return low <= code[:len(low)] and code[:len(high)] <= high
