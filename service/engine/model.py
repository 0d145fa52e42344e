"""The rule-file format as pydantic models: what an admin may write, and nothing else.

Every model forbids unknown keys so a typo (``suppress:`` for ``suppresses:``) is an error with a
did-you-mean hint instead of a silently ignored line. Conditions (``when:``) are parsed by
``conditions.py`` because their error messages need the names of findings and scores.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from service.engine.hooks import HOOKS

ResourceType = Literal[
    "Observation", "Condition", "Procedure", "DiagnosticReport", "ImagingStudy", "ServiceRequest",
]
Hook = Literal[tuple(HOOKS)]  # type: ignore[valid-type]  # the names of the CDS Hooks table
MAX_AGE_YEARS = 130  # older than anyone: an age past it is a slip
SUMMARY_LIMIT = 139  # CDS Hooks 2.0: a card summary is under 140 characters

_DURATION = re.compile(r"([+-]?)([0-9]+)\s*([ywdhm])")  # ASCII digits only (\d takes any script)
_UNITS = {"y": timedelta(days=365), "w": timedelta(weeks=1), "d": timedelta(days=1),
          "h": timedelta(hours=1), "m": timedelta(minutes=1)}


# Longer than any clinical window; bounds a slip such as `99999999999999999999d`.
MAX_DURATION_YEARS = 100
_LONGEST = MAX_DURATION_YEARS * _UNITS["y"]


def parse_duration(raw: Any) -> timedelta:
    """``14d``, ``6h``, ``15m``, ``-7d``: the only spellings, so ``14`` alone is an error."""
    if isinstance(raw, timedelta):
        return raw
    match = _DURATION.fullmatch(str(raw).strip()) if isinstance(raw, str) else None
    if match is None:
        raise ValueError("a duration is a number and a unit, e.g. `14d`, `6h`, `15m`, `1y`")
    amount, unit = int(match[2]), _UNITS[match[3]]
    if amount * unit.total_seconds() > _LONGEST.total_seconds():  # before timedelta overflows
        raise ValueError(f"a duration is at most {MAX_DURATION_YEARS} years")
    return (-1 if match[1] == "-" else 1) * amount * unit


def positive_duration(raw: Any) -> timedelta:
    """A window or a wait: one of zero or less would match nothing, or everything."""
    value = parse_duration(raw)
    if value <= timedelta(0):
        raise ValueError("a window or wait must be longer than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(positive_duration)]


def plain_text(text: str) -> str:
    """Text a card, a log line and the audit record can all carry: a lone surrogate cannot be
    written as UTF-8 and a control character (a tab or a line break aside) is no text; a YAML
    escape such as ``"\\ud800"`` or ``"\\u0000"`` would put either in a file."""
    for char in text:
        if "\ud800" <= char <= "\udfff":
            raise ValueError(f"holds a lone surrogate (U+{ord(char):04X}), which is not text")
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            raise ValueError(f"holds the control character U+{ord(char):04X}")
    return text


def _plain_texts(value: Any) -> Any:
    """Every string of a field, in a list or a mapping (keys too) included, is plain text."""
    if isinstance(value, dict):
        texts = [*value.keys(), *value.values()]
    else:
        texts = value if isinstance(value, list) else [value]
    for text in texts:
        if isinstance(text, str):
            plain_text(text)
    return value


def _non_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty: a card needs a summary (CDS Hooks requires one)")
    return text


class Strict(BaseModel):
    # NaN compares false with everything: a weight or a threshold of NaN would quietly switch
    # a score component or a red-flag finding off.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return _plain_texts(value)


class Include(Strict):
    """Codes from one system; each code maps to its display so a reader knows what it means.

    ``families`` (ICD-10-CM only) cover every code of a category or a range of categories:
    ``Z85`` or ``M16.2-M16.9``. ``texts`` are phrases that make a record whose only content is
    text count as this value set, *uncoded* (red-flag findings only).
    """

    system: str
    codes: dict[str, str] = Field(min_length=1)
    families: dict[str, str] = {}
    texts: list[str] = []


class ValueSet(Strict):
    title: str
    include: list[Include] = Field(min_length=1)


class ValueCompare(Strict):
    """Numeric test on valueQuantity.value or valueInteger."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    eq: float | None = None
    unit: str | None = None


class Finding(Strict):
    """Which resources count as one clinical finding, and under which status policy."""

    title: str
    valueset: str
    resources: list[ResourceType] = Field(min_length=1)
    within: PositiveDuration | None = None
    statuses: Literal["routine", "red-flag"] = "routine"
    history: bool = False
    presence: Literal["present", "absent"] = "present"
    value: ValueCompare | None = None
    body_site: str | None = None
    laterality: Literal["left", "right", "both"] | None = None
    side_of: list[str] = []
    source: Literal["record", "draft-orders"] = "record"


class ScoreComponent(Strict):
    feature: str
    when: Any
    weight: float


class Score(Strict):
    title: str
    components: list[ScoreComponent] = Field(min_length=1)


class DurationSinceOnset(Strict):
    """Time since the earliest onset among ``findings`` (``fallback`` when none has a date)."""

    title: str
    kind: Literal["duration-since-onset"]
    findings: list[str] = Field(min_length=1)
    fallback: list[str] = []


class PercentRelief(Strict):
    """Relief between pain scores before and after a Procedure, or a reported percentage."""

    title: str
    kind: Literal["percent-relief"]
    procedure: str
    pain_score: str
    reported: str | None = None
    before: PositiveDuration
    after_min: Duration
    after_max: PositiveDuration
    min_before_score: float = Field(ge=0, le=10)  # on the 0-10 pain scale

    @model_validator(mode="after")
    def _after_window(self) -> PercentRelief:
        if not timedelta(0) <= self.after_min < self.after_max:
            raise ValueError("the scores after the procedure are taken from `after_min` (zero "
                             "or more) to `after_max`, which must be later")
        return self


DERIVED_KINDS: dict[str, type[Strict]] = {
    "duration-since-onset": DurationSinceOnset,
    "percent-relief": PercentRelief,
}


class Coding(Strict):
    system: str
    code: str
    display: str


class Order(Strict):
    """A coded ServiceRequest template a suggestion can create."""

    title: str
    codes: list[Coding] = Field(min_length=1)
    category: Literal["imaging", "referral", "procedure"]
    body_site: Coding | None = None
    lateralised: bool = False
    performer: str | None = None
    note: str | None = None


class Link(Strict):
    label: str
    url: str

    @field_validator("url")
    @classmethod
    def _absolute(cls, url: str) -> str:
        if not re.match(r"https?://[^/\s]+", url):
            raise ValueError("a link must be an absolute http(s) URL")
        return url


class Source(Strict):
    """A cited document: a source article file or a guideline with its public address."""

    title: str
    kind: Literal["article", "guideline"]
    url: str | None = None
    file: str | None = None


class Suggestion(Strict):
    order: str | None = None
    delete_drafts: str | None = None
    label: str | None = None
    priority: Literal["routine", "urgent", "asap", "stat"] | None = None
    when: Any = None


#: A rule's or a case's id: short kebab-case, stable, the name tools and tests show.
KebabId = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]


class Case(Strict):
    """One test of a rule: data in, rule ids expected present and absent. ``id`` is unique in
    the rule set: what ``rules test``, the workbench and the test suite name the case by."""

    id: KebabId
    name: str
    at: Duration = timedelta(0)
    hook: Hook = "patient-view"
    age: int | None = Field(None, ge=0, le=MAX_AGE_YEARS)
    fixture: str | None = None
    resources: list[dict[str, Any]] = []
    draft_orders: list[dict[str, Any]] = []
    selections: list[str] = []
    expect: list[str] = []
    absent: list[str] = []


class Rule(Strict):
    """One rule. ``red_flag`` is its tier: a firing red-flag rule suppresses every routine
    rule unless ``suppresses_routine: false`` (the reference's named exceptions), and any
    rule suppresses the rules it lists. ``status`` and ``limits`` say how far to trust it."""

    id: KebabId
    title: str
    description: str | None = None
    status: Literal["stable", "test", "experimental", "deprecated"] = "experimental"
    limits: list[str] = []
    enabled: bool = True
    mode: Literal["active", "shadow"] = "active"
    red_flag: bool = False
    suppresses_routine: bool | None = None
    hooks: list[Hook] | None = None
    precedence: int
    suppresses: list[str] = []
    when: Any
    indicator: Literal["info", "warning", "critical"]
    summary: Annotated[str, AfterValidator(_non_blank)]
    detail: str
    suggest: list[Suggestion] = []
    selection: Literal["any", "at-most-one"] = "any"
    reason_from: list[str] = []
    links: list[Link] = []
    override_reasons: list[str] = []
    cite: list[str] = Field(min_length=1)
    pama_rating: Literal["appropriate", "not-appropriate"] | None = None
    tests: list[Case] = []


class Eligibility(Strict):
    min_age_years: int = Field(16, ge=0, le=MAX_AGE_YEARS)
    unknown_age: Literal["red-flags-only", "all-rules"] = "red-flags-only"


class Laterality(Strict):
    """Value sets whose codes (SNOMED qualifiers, ICD-10-CM lateral codes) mean a side."""

    right: str
    left: str
    both: str


class Pama(Strict):
    imaging_drafts: str


class ParameterSpec(Strict):
    """A named window or threshold: a duration with its unit (``6w``, ``14d``) or a number."""

    # NaN or an infinity is refused by `parameters.py` with the parameter's meaning, not by
    # the union of text and number here, which would report both alternatives.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=True)

    title: str
    value: str | float


class RuleFile(Strict):
    """Top level of any file under ``rules/``; the header keys appear in exactly one file."""

    ruleset: str | None = None
    version: str | None = None
    title: str | None = None
    description: str | None = None
    eligibility: Eligibility | None = None
    laterality: Laterality | None = None
    pama: Pama | None = None
    override_reasons: dict[str, str] | None = None
    parameters: dict[str, ParameterSpec] | None = None
    sources: dict[str, Any] | None = None
    valuesets: dict[str, Any] | None = None
    findings: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    derived: dict[str, Any] | None = None
    conditions: dict[str, Any] | None = None
    orders: dict[str, Any] | None = None
    rules: list[Any] | None = None


# Collection sections and the model each entry is validated against.
SECTION_MODELS: dict[str, type[Strict]] = {
    "sources": Source,
    "valuesets": ValueSet,
    "findings": Finding,
    "scores": Score,
    "orders": Order,
}
HEADER_KEYS = ("ruleset", "version", "title", "description", "eligibility", "laterality", "pama",
               "override_reasons", "parameters")
