"""What a card is for comparison, how two answers differ, and the merged totals.

A card is compared by its rule (``source.topic``), indicator and suggested codes; a draft order
by its PAMA rating. ``Impact`` values merge associatively and commutatively, so the local and
the Dask engine may merge partitions in any order and still print the same report.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.cards import PAMA_RATING_URL
from service.engine.codes import CPT, LOINC, SNOMED

SYSTEM_NAMES = {CPT: "CPT", LOINC: "LOINC", SNOMED: "SNOMED"}
PAMA_ROW = "PAMA rating"


@dataclass(frozen=True)
class CardDigest:
    indicator: str
    codes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"indicator": self.indicator, "codes": list(self.codes)}

    def text(self) -> str:
        return " ".join((self.indicator, *self.codes))


@dataclass(frozen=True)
class Answer:
    """The comparable part of one response body."""

    cards: Mapping[str, CardDigest]
    pama: Mapping[str, str]


def _code(coding: Mapping[str, Any]) -> str:
    system = str(coding.get("system", ""))
    return f"{SYSTEM_NAMES.get(system, system)} {coding.get('code', '')}".strip()


def _suggested(card: Mapping[str, Any]) -> tuple[str, ...]:
    codes: set[str] = set()
    for suggestion in card.get("suggestions") or ():
        for action in suggestion.get("actions") or ():
            if action.get("type") == "delete":
                codes.add(f"delete {action.get('resourceId')}")
            resource = action.get("resource") or {}
            for coding in (resource.get("code") or {}).get("coding") or ():
                codes.add(_code(coding))
    return tuple(sorted(codes))


def _rating(resource: Mapping[str, Any]) -> str | None:
    for extension in resource.get("extension") or ():
        if extension.get("url") == PAMA_RATING_URL:
            codings = (extension.get("valueCodeableConcept") or {}).get("coding") or [{}]
            return codings[0].get("code")
    return None


def digest(body: Mapping[str, Any]) -> Answer:
    cards = {card["source"]["topic"]["code"]: CardDigest(card["indicator"], _suggested(card))
             for card in body.get("cards") or ()}
    pama = {}
    for action in body.get("systemActions") or ():
        resource = action.get("resource") or {}
        rating = _rating(resource)
        if rating:
            pama[f"{resource.get('resourceType')}/{resource.get('id')}"] = rating
    return Answer(cards, pama)


@dataclass
class RuleTotal:
    """Per rule: cards before and after, and how many appeared, disappeared or changed."""

    before: int = 0
    after: int = 0
    appeared: int = 0
    disappeared: int = 0
    changed: int = 0
    patients: int = 0

    def add(self, other: RuleTotal) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Impact:
    """The comparison of two rule sets over a population (or one partition of it)."""

    patients: int = 0
    calls: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # one per changed patient
    totals: dict[str, RuleTotal] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def merge(self, other: Impact) -> Impact:
        """A new Impact holding both; patient lists (each sorted) stay in patient-id order."""
        totals = {rule: RuleTotal(**t.as_dict()) for rule, t in self.totals.items()}
        for rule, total in other.totals.items():
            totals.setdefault(rule, RuleTotal()).add(total)
        return Impact(
            patients=self.patients + other.patients,
            calls=self.calls + other.calls,
            changes=list(heapq.merge(self.changes, other.changes, key=lambda c: c["patient"])),
            totals=totals,
            errors=list(heapq.merge(self.errors, other.errors, key=lambda e: e["patient"])),
        )

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def changed_patients(self) -> list[str]:
        return [c["patient"] for c in self.changes]

    def as_dict(self) -> dict[str, Any]:
        return {
            "patients": self.patients,
            "calls": self.calls,
            "changedPatients": len(self.changes),
            "changes": self.changes,
            "totals": {rule: self.totals[rule].as_dict() for rule in sorted(self.totals)},
            "errors": self.errors,
        }


def merge_all(parts: Iterable[Impact]) -> Impact:
    out = Impact()
    for part in parts:
        out = out.merge(part)
    return out


def compare_patient(patient_id: str, answers: Iterable[tuple[str, Answer, Answer]]) -> Impact:
    """The Impact of one patient from (call label, old answer, new answer) triples."""
    impact = Impact(patients=1)
    cards: list[dict[str, Any]] = []
    pama: list[dict[str, Any]] = []
    touched: set[str] = set()
    for call, old, new in answers:
        impact.calls += 1
        for rule in sorted(set(old.cards) | set(new.cards)):
            total = impact.totals.setdefault(rule, RuleTotal())
            before, after = old.cards.get(rule), new.cards.get(rule)
            total.before += before is not None
            total.after += after is not None
            if before == after:
                continue
            kind = "appeared" if before is None else "disappeared" if after is None else "changed"
            setattr(total, kind, getattr(total, kind) + 1)
            touched.add(rule)
            cards.append({"call": call, "rule": rule, "change": kind,
                          "before": before.as_dict() if before else None,
                          "after": after.as_dict() if after else None})
        for draft in sorted(set(old.pama) | set(new.pama)):
            if old.pama.get(draft) != new.pama.get(draft):
                impact.totals.setdefault(PAMA_ROW, RuleTotal()).changed += 1
                touched.add(PAMA_ROW)
                pama.append({"call": call, "draft": draft, "before": old.pama.get(draft),
                             "after": new.pama.get(draft)})
    for rule in touched:
        impact.totals[rule].patients = 1
    if cards or pama:
        impact.changes.append({"patient": patient_id, "cards": cards, "pama": pama})
    return impact
