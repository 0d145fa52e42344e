"""Code systems the rule files may name, and the per-system checks that catch a mistyped code.

A transposed digit in a SNOMED CT or LOINC code silently turns a red-flag value set into one
that never matches; the check digits of both systems catch almost every such slip at load time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
FINDING = "http://spinehip-cds.org/fhir/CodeSystem/finding"
OBSERVATION_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
# Value-set keys that are not codes: a family of ICD-10-CM codes, a phrase naming a finding.
FAMILY_MARK = "~"
TEXT = "urn:spinehip-cds:text-phrase"
ICD10CM_FAMILY = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?(-[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?)?")

# Short names an admin writes in a rule file -> canonical system URI.
SYSTEM_ALIASES: dict[str, str] = {
    "snomed": SNOMED,
    "icd10cm": ICD10CM,
    "loinc": LOINC,
    "cpt": CPT,
    "finding": FINDING,
}

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P1 = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)


def _verhoeff_permutations() -> tuple[tuple[int, ...], ...]:
    """Row i of the position permutation table is the base permutation applied i times."""
    rows = [tuple(range(10))]
    for _ in range(7):
        rows.append(tuple(_VERHOEFF_P1[x] for x in rows[-1]))
    return tuple(rows)


_VERHOEFF_P = _verhoeff_permutations()

# Every letter: ICD-10-CM uses U too (U07.1 COVID-19, U09.9 post COVID-19 condition).
_ICD10CM = re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?")
_LOINC = re.compile(r"([0-9]{1,7})-([0-9])")
_CPT = re.compile(r"[0-9]{4}[0-9FTU]")
_LOCAL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def verhoeff_valid(digits: str) -> bool:
    """True when the last digit is the Verhoeff check digit of the rest (SNOMED CT SCTIDs)."""
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the hyphen."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        value = int(ch) * 2 if i % 2 == 0 else int(ch)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def check_snomed(code: str) -> str | None:
    if not code.isdigit() or not 6 <= len(code) <= 18 or code.startswith("0"):
        return "a SNOMED CT identifier is 6 to 18 digits without a leading zero"
    if code[-3:-1] not in ("00", "10"):
        return f"partition `{code[-3:-1]}` is not a concept partition (00 or 10)"
    if not verhoeff_valid(code):
        return "the Verhoeff check digit does not match"
    return None


def check_loinc(code: str) -> str | None:
    match = _LOINC.fullmatch(code)
    if match is None:
        return "a LOINC code looks like `72514-3` (digits, hyphen, check digit)"
    if loinc_check_digit(match[1]) != int(match[2]):
        return f"the mod-10 check digit should be {loinc_check_digit(match[1])}"
    return None


def check_icd10cm(code: str) -> str | None:
    if _ICD10CM.fullmatch(code) is None:
        return "an ICD-10-CM code looks like `M54.41` (letter, two characters, dot, up to four)"
    return None


def check_cpt(code: str) -> str | None:
    if _CPT.fullmatch(code) is None:
        return "a CPT code is five characters, e.g. `72148`"
    return None


def check_local(code: str) -> str | None:
    if _LOCAL.fullmatch(code) is None:
        return "a local finding code is lower-case words joined by hyphens"
    return None


CHECKS: dict[str, Callable[[str], str | None]] = {
    SNOMED: check_snomed,
    LOINC: check_loinc,
    ICD10CM: check_icd10cm,
    CPT: check_cpt,
    FINDING: check_local,
}


def resolve_system(name: str) -> str | None:
    """The canonical URI for an alias or a known URI; None for a system the rules do not know."""
    if name in SYSTEM_ALIASES:
        return SYSTEM_ALIASES[name]
    return name if name in CHECKS else None


def check_code(system: str, code: str) -> str | None:
    """Why ``code`` cannot belong to ``system`` (canonical URI), or None when it is well formed."""
    check = CHECKS.get(system)
    return check(code) if check else None
