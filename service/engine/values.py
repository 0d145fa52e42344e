"""What an Observation's value says: present or absent, and a number where one is measured.

Clinical reference §2.0 and §2.0.1. Absent: SNOMED Absent 2667000 or No 373067005, v2-0136 `N`,
``false``, ``dataAbsentReason``, NEG under either interpretation URI, or a string/text saying
no, absent, negative or denies. Everything else with a value, or no value at all, is present.
Numbers: valueInteger, valueQuantity, and a motor grade written "3/5".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from service.engine.canonical import canonical
from service.engine.codes import LOINC, OBSERVATION_INTERPRETATION, SNOMED, YES_NO

ABSENT_CODES = frozenset({(SNOMED, "2667000"), (SNOMED, "373067005"), (YES_NO, "N")})
NEGATIVE = (OBSERVATION_INTERPRETATION, "NEG")
ABSENT_WORDS = frozenset({"no", "absent", "negative", "denies", "denied", "none", "not present",
                          "neg", "n"})
_GRADE = re.compile(r"\s*([0-5])\s*[+-]?\s*/\s*5\s*")


class UnreadableValue(ValueError):
    """A value whose shape does not follow FHIR R4 closely enough to use."""


def codings(concept: Any) -> list[Mapping[str, Any]]:
    if concept is None:
        return []
    if not isinstance(concept, dict):
        raise UnreadableValue("a CodeableConcept must be an object")
    found = concept.get("coding") or []
    if not isinstance(found, list):
        raise UnreadableValue("`coding` must be a list")
    return [c for c in found if isinstance(c, dict)]


def code_keys(concepts: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """Canonical (system, code) of every usable coding."""
    out = []
    for concept in concepts:
        for c in codings(concept):
            system, code = c.get("system"), c.get("code")
            if type(system) is str and type(code) is str:
                out.append(canonical(system, code))
    return tuple(out)


def says_absent(text: str) -> bool:
    return text.strip().lower().rstrip(".") in ABSENT_WORDS


def is_present(record: Mapping[str, Any]) -> bool:
    """Negation policy for an Observation (or one of its components)."""
    if record.get("dataAbsentReason") is not None or record.get("valueBoolean") is False:
        return False
    value = record.get("valueCodeableConcept")
    if value is not None:
        if not ABSENT_CODES.isdisjoint(code_keys([value])):
            return False
        text = value.get("text") if isinstance(value, dict) else None
        if isinstance(text, str) and not codings(value) and says_absent(text):
            return False
    text = record.get("valueString")
    if isinstance(text, str) and says_absent(text):
        return False
    interpretations = record.get("interpretation")
    if not interpretations:
        return True
    if isinstance(interpretations, dict):
        interpretations = [interpretations]
    return NEGATIVE not in code_keys(interpretations)


def quantity(record: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """(number, unit) of valueInteger, valueQuantity, or a motor grade string like "3/5"."""
    if "valueInteger" in record:
        value = record["valueInteger"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnreadableValue("valueInteger must be an integer")
        return float(value), None
    text = record.get("valueString")
    if isinstance(text, str) and (grade := _GRADE.fullmatch(text)):
        return float(grade[1]), None
    measured = record.get("valueQuantity")
    if measured is None:
        return None, None
    if not isinstance(measured, dict):
        raise UnreadableValue("valueQuantity must be an object")
    value = measured.get("value")
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnreadableValue("valueQuantity.value must be a number")
    unit = measured.get("code") or measured.get("unit")
    return float(value), unit if isinstance(unit, str) else None


BODY_TEMPERATURE = (LOINC, "8310-5")
FEVER = (SNOMED, "386661006")
FEVER_FROM_CELSIUS = 38.0
MEASURED = frozenset({BODY_TEMPERATURE})


def _celsius(value: float, unit: str | None) -> float | None:
    if unit in ("Cel", "°C", "C", "degC"):
        return value
    if unit in ("[degF]", "°F", "F", "degF"):
        return (value - 32) * 5 / 9
    return None


def measured_findings(keys: Iterable[tuple[str, str]], value: float | None,
                      unit: str | None) -> tuple[tuple[str, str], ...]:
    """Findings a measurement amounts to where the reference sets a threshold: a body
    temperature (LOINC 8310-5) of 38.0 °C or more is Fever 386661006."""
    if value is None or BODY_TEMPERATURE not in keys:
        return ()
    celsius = _celsius(value, unit)
    return (FEVER,) if celsius is not None and round(celsius, 1) >= FEVER_FROM_CELSIUS else ()
