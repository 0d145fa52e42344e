"""fixtures/expected.yaml: the exact cards each fixture request must produce."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.yamlsource import ConfigFileError, load_yaml


@dataclass(frozen=True)
class ExpectedCard:
    """One card a case must produce: its topic (rule slug), indicator and ordered CPT codes."""

    topic: str
    indicator: str
    cpt: tuple[str, ...]


@dataclass(frozen=True)
class FixtureCase:
    """One row of fixtures/expected.yaml: the files of a case and the exact cards it expects."""

    id: str
    patient: Path
    request: Path
    cards: tuple[ExpectedCard, ...]
    pama: Mapping[str, str]
    why: str

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(card.topic for card in self.cards)


CARD_TOPICS = (
    "cauda-equina", "progressive-neuro-deficit", "serious-pathology", "early-lumbar-imaging",
    "spine-pattern-mri", "hip-pattern-radiographs", "diagnostic-hip-injection",
    "injection-confirms-hip", "injection-points-to-spine", "lateral-hip-pain",
    "piriformis-pattern", "si-joint-pattern", "documentation-gap",
)
INDICATORS = ("info", "warning", "critical")
PAMA_RATINGS = ("appropriate", "not-appropriate", "no-criteria-apply")
EXPECTATIONS_FILE = "expected.yaml"


def _card_from(doc: Any, loc: tuple[str | int, ...], card: Any, errors: list[Any]
               ) -> ExpectedCard | None:
    if not isinstance(card, dict) or set(card) != {"topic", "indicator", "cpt"}:
        errors.append(doc.error(loc, "a card needs exactly `topic`, `indicator` and `cpt`"))
        return None
    if card["topic"] not in CARD_TOPICS:
        errors.append(doc.error((*loc, "topic"), f"unknown card topic {card['topic']!r}"))
    if card["indicator"] not in INDICATORS:
        errors.append(doc.error((*loc, "indicator"), f"unknown indicator {card['indicator']!r}"))
    cpt = card["cpt"]
    if not isinstance(cpt, list) or not all(isinstance(c, str) for c in cpt) or cpt != sorted(cpt):
        errors.append(doc.error((*loc, "cpt"), "`cpt` must be a sorted list of code strings"))
        return None
    return ExpectedCard(card["topic"], card["indicator"], tuple(cpt))


def _case_from(doc: Any, index: int, raw: Any, root: Path, errors: list[Any]) -> FixtureCase | None:
    loc: tuple[str | int, ...] = ("cases", index)
    if not isinstance(raw, dict):
        errors.append(doc.error(loc, "a case must be a mapping"))
        return None
    allowed = {"id", "patient", "request", "cards", "pama", "why"}
    for key in raw:
        if key not in allowed:
            errors.append(doc.error((*loc, key), f"unknown key `{key}`"))
    for key in ("id", "patient", "request", "why"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            errors.append(doc.error((*loc, key), f"`{key}` must be a non-empty string"))
    raw_cards = raw.get("cards")
    if not isinstance(raw_cards, list):
        errors.append(doc.error((*loc, "cards"), "`cards` must be a list (empty when none fire)"))
        raw_cards = []
    cards = [c for j, card in enumerate(raw_cards)
             if (c := _card_from(doc, (*loc, "cards", j), card, errors)) is not None]
    pama = raw.get("pama") or {}
    if not isinstance(pama, dict) or any(v not in PAMA_RATINGS for v in pama.values()):
        errors.append(doc.error((*loc, "pama"), f"`pama` maps draft ids to {PAMA_RATINGS}"))
        pama = {}
    if errors:
        return None
    return FixtureCase(raw["id"], root / raw["patient"], root / raw["request"], tuple(cards),
                       dict(pama), raw["why"])


def load_cases(fixtures_dir: str | Path) -> list[FixtureCase]:
    """Every case of ``fixtures_dir/expected.yaml``; all problems reported at once."""
    root = Path(fixtures_dir)
    doc = load_yaml(root / EXPECTATIONS_FILE)
    raw_cases = doc.data.get("cases") if isinstance(doc.data, dict) else None
    if not isinstance(raw_cases, list):
        raise ConfigFileError([doc.error(("cases",), "expected a top-level `cases:` list")])
    errors: list[Any] = []
    cases: list[FixtureCase] = []
    for index, raw in enumerate(raw_cases):
        case_errors: list[Any] = []
        case = _case_from(doc, index, raw, root, case_errors)
        errors.extend(case_errors)
        if case is not None:
            cases.append(case)
    ids = [c.id for c in cases]
    for index, case in enumerate(cases):
        if ids.index(case.id) != index:
            errors.append(doc.error(("cases", index, "id"), f"duplicate case id {case.id!r}"))
    if errors:
        raise ConfigFileError(errors)
    return cases


