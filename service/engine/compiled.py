"""The compiled rule set: frozen values built once at load and shared read-only by requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from service.engine import model as m
from service.engine.codes import FAMILY_MARK, ICD10CM, TEXT
from service.engine.conditions import Node
from service.engine.laterality import sides_by_code
from service.engine.parameters import Parameter

CodeKey = tuple[str, str]


@dataclass(frozen=True)
class CompiledFinding:
    name: str
    spec: m.Finding
    codes: frozenset[CodeKey]
    body_sites: frozenset[CodeKey] | None


@dataclass(frozen=True)
class CompiledSuggestion:
    spec: m.Suggestion
    when: Node | None


@dataclass(frozen=True)
class CompiledRule:
    """One rule ready to run: its texts have the parameters' values filled in, and
    ``spec.suppresses`` holds every rule it hides once it fires (its tier's and its list)."""

    spec: m.Rule
    when: Node
    suggestions: tuple[CompiledSuggestion, ...]
    file: str
    line: int

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class ScoreDef:
    name: str
    title: str
    components: tuple[tuple[m.ScoreComponent, Node], ...]


@dataclass(frozen=True)
class RuleSet:
    """A validated, compiled rule set; shared read-only between requests and threads."""

    name: str
    version: str
    content_hash: str
    title: str
    rules_dir: Path
    files: tuple[str, ...]
    eligibility: m.Eligibility
    valuesets: Mapping[str, frozenset[CodeKey]]
    displays: Mapping[CodeKey, str]
    findings: Mapping[str, CompiledFinding]
    code_index: Mapping[CodeKey, tuple[str, ...]]
    conditions: Mapping[str, Node]
    scores: Mapping[str, ScoreDef]
    durations: Mapping[str, m.DurationSinceOnset]
    reliefs: Mapping[str, m.PercentRelief]
    orders: Mapping[str, m.Order]
    sources: Mapping[str, m.Source]
    override_reasons: Mapping[str, str]  # code -> text, a snooze reason's length filled in
    laterality: Mapping[str, frozenset[CodeKey]]
    pama_finding: str | None
    rules: tuple[CompiledRule, ...]
    cases: tuple[tuple[CompiledRule, m.Case], ...] = field(default=())
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    snooze_days: Mapping[str, int] = field(default_factory=dict)  # the lengths the texts state

    @property
    def full_version(self) -> str:
        """The version an admin wrote plus a content hash, so an unbumped edit is still visible."""
        return f"{self.version}+{self.content_hash[:8]}"

    @cached_property
    def families(self) -> tuple[str, ...]:
        """ICD-10-CM families the value sets name (``Z85``, ``M16.2-M16.9``)."""
        return tuple(sorted(c[len(FAMILY_MARK):] for s, c in self.code_index
                            if s == ICD10CM and c.startswith(FAMILY_MARK)))

    @cached_property
    def red_flag_findings(self) -> tuple[str, ...]:
        """Red-flag findings of the patient's record, in file order: every call collects their
        evidence, whether or not a rule fired."""
        return tuple(name for name, finding in self.findings.items()
                     if finding.spec.statuses == "red-flag" and finding.spec.source == "record")

    @cached_property
    def side_of_code(self) -> dict[CodeKey, str]:
        """The side each laterality code says, for the normaliser's per-record look-up."""
        return sides_by_code(self.laterality)

    @cached_property
    def coding_verdicts(self) -> dict[tuple[str, str], bool]:
        """Memo of the normaliser: does a coding, as written, hold a code the rules use?
        An EHR repeats the same few thousand codings; filled as they are seen."""
        return {}

    @cached_property
    def concept_verdicts(self) -> dict[tuple[object, ...], bool]:
        """Memo of the normaliser: does a code concept, as written, surely name nothing a rule
        uses (no code in a value set, no finding named by its text)? Filled as they are seen."""
        return {}

    @cached_property
    def record_verdicts(self) -> dict[str, bool]:
        """Memo of the normaliser: does a record of this kind surely hold nothing a rule uses?
        Keyed by the JSON of the members the answer depends on; filled as they are seen."""
        return {}

    @cached_property
    def coded_concepts(self) -> dict[str, tuple[object, ...]]:
        """Memo of the normaliser: what a record's code concepts, as written, say (its codes,
        those a rule uses, a display, a side). Keyed by their JSON; filled as they are seen."""
        return {}

    @cached_property
    def texts(self) -> tuple[str, ...]:
        """Lower-case phrases that name a finding in a record with no usable code."""
        return tuple(sorted(c for s, c in self.code_index if s == TEXT))
