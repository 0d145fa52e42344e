"""FHIR R4 resources -> coded, dated facts, with the shared data-handling policy applied once.

Input is plain dicts as parsed from JSON. A resource is looked at closely only when one of its
codes appears in some value set of the rule set (the compiled code index); everything else is
counted and passed over. Status filters, negation, dates and laterality are decided here so
that no rule has to repeat them. A resource that cannot be read is skipped and reported in the
trace; it never fails the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from service.engine.codes import OBSERVATION_INTERPRETATION, SNOMED
from service.engine.ruleset import CodeKey, RuleSet

ABSENT = (SNOMED, "2667000")

OBSERVATION_IGNORED = frozenset({"entered-in-error", "cancelled", "unknown"})
OBSERVATION_TENTATIVE = frozenset({"preliminary", "registered"})
CONDITION_IGNORED = frozenset({"entered-in-error", "refuted"})
CONDITION_TENTATIVE = frozenset({"unconfirmed", "provisional", "differential"})
CONDITION_CURRENT = frozenset({"active", "recurrence", "relapse"})
REPORT_IGNORED = frozenset({"entered-in-error", "cancelled"})
REPORT_TENTATIVE = frozenset({"registered", "partial", "preliminary"})
PROCEDURE_COUNTED = frozenset({"completed"})
ORDER_IGNORED = frozenset({"entered-in-error", "revoked"})


class UnreadableResource(ValueError):
    """A resource whose shape or values do not follow FHIR R4 closely enough to use."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One coded statement from one resource, ready for matching against findings."""

    ref: str
    resource_type: str
    codes: tuple[CodeKey, ...]
    display: str
    when: datetime | None
    status: str
    tentative: bool = False
    current: bool = True
    present: bool = True
    value: float | None = None
    unit: str | None = None
    body_sites: frozenset[CodeKey] = frozenset()
    laterality: str | None = None
    part_of: frozenset[str] = frozenset()
    draft: bool = False
    resource: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def date_text(self) -> str | None:
        return self.when.date().isoformat() if self.when else None


@dataclass
class FactBase:
    """All facts of one request, indexed by code, plus what the normaliser passed over."""

    facts: list[Fact]
    by_code: dict[CodeKey, list[Fact]]
    birth_date: date | None
    patient_ref: str | None
    resources_seen: int
    not_coded_for_rules: int
    skipped: list[dict[str, str]]
    ignored: list[dict[str, str]]

    def trace(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resources": self.resources_seen,
            "facts": len(self.facts),
            "notRelevant": self.not_coded_for_rules,
        }
        if self.skipped:
            out["skipped"] = self.skipped
        if self.ignored:
            out["ignored"] = self.ignored
        return out


def parse_instant(raw: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware UTC datetime (partial dates: first day)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UnreadableResource(f"date {raw!r} is not a string")
    text = raw.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UnreadableResource(f"unreadable date {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _codings(concept: Any) -> list[Mapping[str, Any]]:
    if concept is None:
        return []
    if not isinstance(concept, dict):
        raise UnreadableResource("a CodeableConcept must be an object")
    codings = concept.get("coding") or []
    if not isinstance(codings, list):
        raise UnreadableResource("`coding` must be a list")
    return [c for c in codings if isinstance(c, dict)]


def _keys(concepts: Iterable[Any]) -> tuple[CodeKey, ...]:
    out = []
    for concept in concepts:
        for c in _codings(concept):
            system, code = c.get("system"), c.get("code")
            if type(system) is str and type(code) is str:
                out.append((system, code))
    return tuple(out)


def _display(concepts: Iterable[Any], ruleset: RuleSet) -> str:
    for concept in concepts:
        if isinstance(concept, dict) and isinstance(concept.get("text"), str):
            return concept["text"]
        for c in _codings(concept):
            if isinstance(c.get("display"), str):
                return c["display"]
            known = ruleset.displays.get((c.get("system"), c.get("code")))
            if known:
                return known
    return "coded finding"


def _code_concepts(resource: Mapping[str, Any]) -> list[Any]:
    if resource.get("resourceType") == "ImagingStudy":
        concepts = resource.get("procedureCode") or []
        if not isinstance(concepts, list):
            raise UnreadableResource("`procedureCode` must be a list")
        return concepts
    return [resource.get("code")]


def _first_date(resource: Mapping[str, Any], *names: str) -> datetime | None:
    for name in names:
        value = resource.get(name)
        if isinstance(value, dict):  # Period
            value = value.get("start") or value.get("end")
        if value is not None:
            return parse_instant(value)
    return None


def _status_code(concept: Any) -> str | None:
    if isinstance(concept, str):  # STU3 and DSTU2 carry the status as a bare code
        return concept
    for c in _codings(concept):
        if isinstance(c.get("code"), str):
            return c["code"]
    return None


def _body_sites(resource: Mapping[str, Any]) -> tuple[CodeKey, ...]:
    sites = resource.get("bodySite")
    if sites is None:
        return ()
    return _keys(sites if isinstance(sites, list) else [sites])


def _laterality(keys: Iterable[CodeKey], ruleset: RuleSet) -> str | None:
    sides = {side for side, codes in ruleset.laterality.items() for k in keys if k in codes}
    if "both" in sides or {"left", "right"} <= sides:
        return "both"
    return next(iter(sides), None)


def _observation_presence(resource: Mapping[str, Any]) -> bool:
    """Negation policy (clinical reference 2.0): Absent, false, NEG or dataAbsentReason."""
    if resource.get("dataAbsentReason") is not None:
        return False
    if resource.get("valueBoolean") is False:
        return False
    value_codes = set(_keys([resource.get("valueCodeableConcept")]))
    if ABSENT in value_codes:
        return False
    interpretations = resource.get("interpretation") or []
    if isinstance(interpretations, dict):
        interpretations = [interpretations]
    return (OBSERVATION_INTERPRETATION, "NEG") not in set(_keys(interpretations))


def _quantity(resource: Mapping[str, Any]) -> tuple[float | None, str | None]:
    if "valueInteger" in resource:
        value = resource["valueInteger"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnreadableResource("valueInteger must be an integer")
        return float(value), None
    quantity = resource.get("valueQuantity")
    if quantity is None:
        return None, None
    if not isinstance(quantity, dict):
        raise UnreadableResource("valueQuantity must be an object")
    value = quantity.get("value")
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnreadableResource("valueQuantity.value must be a number")
    unit = quantity.get("code") or quantity.get("unit")
    return float(value), unit if isinstance(unit, str) else None


def _references(resource: Mapping[str, Any], name: str) -> frozenset[str]:
    refs = resource.get(name) or []
    if isinstance(refs, dict):
        refs = [refs]
    return frozenset(r["reference"] for r in refs
                     if isinstance(r, dict) and isinstance(r.get("reference"), str))


def _fact(resource: Mapping[str, Any], keys: tuple[CodeKey, ...], ruleset: RuleSet,
          draft: bool) -> Fact | str:
    """A Fact, or the reason (str) the resource is ignored under the status policy."""
    rtype = resource["resourceType"]
    ref = f"{rtype}/{resource.get('id', '?')}"
    concepts = _code_concepts(resource)
    sites = _body_sites(resource)
    common: dict[str, Any] = {
        "ref": ref, "resource_type": rtype, "codes": keys,
        "display": _display(concepts, ruleset), "body_sites": frozenset(sites),
        "laterality": _laterality((*sites, *keys), ruleset), "draft": draft,
    }
    status = resource.get("status")
    if rtype == "Condition":
        verification = _status_code(resource.get("verificationStatus"))
        if verification in CONDITION_IGNORED:
            return f"verificationStatus {verification}"
        clinical = _status_code(resource.get("clinicalStatus")) or "active"
        return Fact(**common, status=clinical,
                    when=_first_date(resource, "onsetDateTime", "onsetPeriod", "recordedDate"),
                    tentative=verification in CONDITION_TENTATIVE,
                    current=clinical in CONDITION_CURRENT)
    if not isinstance(status, str):
        raise UnreadableResource("`status` is missing")
    if rtype == "Observation":
        if status in OBSERVATION_IGNORED:
            return f"status {status}"
        value, unit = _quantity(resource)
        return Fact(**common, status=status,
                    when=_first_date(resource, "effectiveDateTime", "effectivePeriod",
                                     "effectiveInstant", "issued"),
                    tentative=status in OBSERVATION_TENTATIVE,
                    present=_observation_presence(resource), value=value, unit=unit,
                    part_of=_references(resource, "partOf"))
    if rtype == "Procedure":
        if status not in PROCEDURE_COUNTED:
            return f"status {status}"
        return Fact(**common, status=status,
                    when=_first_date(resource, "performedDateTime", "performedPeriod"))
    if rtype in ("DiagnosticReport", "ImagingStudy"):
        if status in REPORT_IGNORED:
            return f"status {status}"
        return Fact(**common, status=status, tentative=status in REPORT_TENTATIVE,
                    when=_first_date(resource, "effectiveDateTime", "effectivePeriod", "started",
                                     "issued"))
    if status in ORDER_IGNORED:  # ServiceRequest
        return f"status {status}"
    return Fact(**common, status=status,
                when=_first_date(resource, "authoredOn", "occurrenceDateTime"),
                resource=resource if draft else None)


FACT_TYPES = frozenset({"Observation", "Condition", "Procedure", "DiagnosticReport",
                        "ImagingStudy", "ServiceRequest"})


def draft_resources(draft_orders: Any) -> list[Mapping[str, Any]]:
    """Resources of ``context.draftOrders``: a Bundle, its entries, or bare resources."""
    if isinstance(draft_orders, dict):
        draft_orders = draft_orders.get("entry") or []
    if not isinstance(draft_orders, Sequence) or isinstance(draft_orders, str):
        return []
    out = []
    for item in draft_orders:
        if isinstance(item, dict) and isinstance(item.get("resource"), Mapping):
            item = item["resource"]
        if isinstance(item, dict) and isinstance(item.get("resourceType"), str):
            out.append(item)
    return out


def normalise(
    ruleset: RuleSet,
    resources: Iterable[Mapping[str, Any]],
    *,
    draft_orders: Any = (),
    selections: Sequence[str] = (),
) -> FactBase:
    """Facts from the patient record and the draft orders (limited to ``selections`` if given)."""
    base = FactBase([], {}, None, None, 0, 0, [], [])
    selected = set(selections)
    drafts = [r for r in draft_resources(draft_orders)
              if not selected or f"{r.get('resourceType')}/{r.get('id')}" in selected]
    for draft, items in ((False, resources), (True, drafts)):
        for resource in items:
            base.resources_seen += 1
            _take(base, ruleset, resource, draft)
    return base


def _surely_uncoded(resource: dict[str, Any], index: Mapping[CodeKey, Any]) -> bool:
    """Fast path for most of a record: a well-formed ``code`` none of whose codings a rule uses.

    Anything unusual (ImagingStudy, a malformed code) returns False and takes the full path,
    which reports it.
    """
    concept = resource.get("code")
    if type(concept) is not dict:
        return False
    codings = concept.get("coding")
    if type(codings) is not list:
        return False
    for coding in codings:
        if type(coding) is not dict or (coding.get("system"), coding.get("code")) in index:
            return False
    return True


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id', '?')}"


def _take(base: FactBase, ruleset: RuleSet, resource: Any, draft: bool) -> None:
    if not isinstance(resource, dict):
        base.skipped.append({"ref": "?", "reason": "not a JSON object"})
        return
    rtype = resource.get("resourceType")
    try:
        if rtype == "Patient":
            if base.patient_ref is None:
                base.patient_ref = _ref(resource)
                born = parse_instant(resource.get("birthDate"))
                base.birth_date = born.date() if born else None
            return
        if rtype not in FACT_TYPES or _surely_uncoded(resource, ruleset.code_index):
            base.not_coded_for_rules += 1
            return
        keys = _keys(_code_concepts(resource))
        if not any(k in ruleset.code_index for k in keys):
            base.not_coded_for_rules += 1
            return
        fact = _fact(resource, keys, ruleset, draft)
    except UnreadableResource as exc:
        base.skipped.append({"ref": _ref(resource), "reason": str(exc)})
        return
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        base.skipped.append({"ref": _ref(resource), "reason": f"unreadable: {exc}"})
        return
    if isinstance(fact, str):
        base.ignored.append({"ref": _ref(resource), "reason": fact})
        return
    base.facts.append(fact)
    for key in keys:
        if key in ruleset.code_index:
            base.by_code.setdefault(key, []).append(fact)
