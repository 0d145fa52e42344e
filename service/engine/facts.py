"""FHIR R4 resources -> coded, dated facts, with the shared data-handling policy applied once.

The one normalisation layer of a request (clinical reference §2.0 and §2.0.1), run once before
any rule. Input is plain dicts as parsed from JSON. Every resource is first bound to the context
patient (binding); each place in it that can hold a finding (records) becomes a fact when one of
its codes, written however the EHR wrote it (canonical), is in some value set. Dates (dates),
values (values) and sides (laterality) are read by their own modules. A fact the policy cannot
be sure of is kept and marked *uncertain* (date, status, uncoded): red-flag findings use it and
say so, routine findings do not. What is excluded is counted by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from itertools import compress, repeat
from operator import contains, not_
from typing import Any, NamedTuple

import orjson

from service.engine import binding, dates
from service.engine.canonical import canonical, canonical_system, in_family
from service.engine.codes import CPT, FAMILY_MARK, ICD10CM, LOINC, SNOMED, TEXT
from service.engine.laterality import record_side, side_of_codes
from service.engine.records import ANOTHER_PATIENT, places
from service.engine.ruleset import CodeKey, RuleSet
from service.engine.values import (
    MEASURED,
    UnreadableValue,
    code_keys,
    codings,
    is_present,
    measured_findings,
    quantity,
)

OBSERVATION_IGNORED = frozenset({"entered-in-error", "cancelled", "unknown"})
OBSERVATION_TENTATIVE = frozenset({"preliminary", "registered"})
CONDITION_IGNORED = frozenset({"entered-in-error", "refuted"})
CONDITION_TENTATIVE = frozenset({"unconfirmed", "provisional", "differential"})
CONDITION_CURRENT = frozenset({"active", "recurrence", "relapse"})
REPORT_IGNORED = frozenset({"entered-in-error", "cancelled"})
PROCEDURE_COUNTED = frozenset({"completed"})
ORDER_IGNORED = frozenset({"entered-in-error", "revoked"})
# Statuses that withdraw a record of any kind: what it holds or contains is withdrawn with it
# (§2.0); a Condition is withdrawn by CONDITION_IGNORED.
WITHDRAWN = OBSERVATION_IGNORED - {"unknown"} | REPORT_IGNORED | ORDER_IGNORED

STATUS_MISSING = "status missing"
UNCODED = "uncoded"
STANDARD_SYSTEMS = frozenset({SNOMED, ICD10CM, LOINC, CPT})
MAX_VERDICTS = 100_000  # codings and concepts remembered per rule set; beyond that, computed each time
# Longest coding or concept (characters of text, systems, codes and displays), or record kind
# (characters of JSON), a memo keeps: EHR rows are short, and a hostile caller's long texts must not
# stay in a worker's memory.
MAX_REMEMBERED_CHARS = 512
# Code concept lists remembered with what they say (about 1.5 KB each): those that reach a record's
# full reading are the few kinds of finding a chart holds, and a hostile caller's many must not
# fill a worker's memory.
MAX_CODED_CONCEPTS = 10_000

DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "Condition": ("onsetDateTime", "onsetPeriod", "onsetString", "onsetAge", "onsetRange",
                  "recordedDate"),
    "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
    "Procedure": ("performedDateTime", "performedPeriod", "performedString"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued"),
    "ImagingStudy": ("started",),
    "ServiceRequest": ("authoredOn", "occurrenceDateTime"),
}
FACT_TYPES = frozenset(DATE_FIELDS)
# A text says the patient has no such sign when, in the same clause, a negation or a relative
# ("family history of") stands before the phrase; or when a chronic subtype names it ("stress
# urinary incontinence": its codes N39.3, N39.41, N39.46 are not in VS-CES); or a word after it
# denies it, or a form's answer does ("Retention: no"). A risk, a fear or a history of it may be
# a clinician's suspicion or this episode: it stays a red flag.
_NEGATED_BEFORE = re.compile(r"\b(no|not|denies|denied|without|negative for|absence of|"
                             r"family history|fhx|fh)\b[^.;,]*$")
_SUBTYPE_BEFORE = re.compile(r"\b(stress|urge|mixed|functional|post-?prostatectomy)\s+$")
_NEGATED_AFTER = re.compile(r"^[^.;,]*\b(negative|absent|excluded|ruled out|denied|not)\b"
                            r"|^\s*[:=?-]?\s*(no|none|nil|neg|n)\b(?=\s*(?:[.;,]|$))")


class UnreadableResource(ValueError):
    """A resource whose shape or values do not follow FHIR R4 closely enough to use."""


@dataclass(slots=True)
class Fact:
    """One coded statement from one place in one resource, ready for matching.

    Not changed once made. Not frozen: a request makes dozens, and a frozen dataclass is four
    times slower to build."""

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
    until: datetime | None = None
    date_doubt: str | None = None
    doubts: tuple[str, ...] = ()
    date_text: str | None = None
    resource: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def sure_when(self) -> datetime | None:
        """The date, when it is sure enough to measure a duration from."""
        return self.when if self.date_doubt is None else None


@dataclass
class FactBase:
    """All facts of one request, indexed by the findings whose codes they carry, plus what the
    normaliser passed over."""

    facts: list[Fact]
    by_finding: dict[str, list[Fact]]
    birth_date: date | None
    patient_ref: str | None
    resources_seen: int
    not_coded_for_rules: int
    skipped: list[dict[str, str]]
    ignored: list[dict[str, str]]
    excluded: Counter[str] = field(default_factory=Counter)
    deceased: bool = False

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
        if self.excluded:
            out["excluded"] = dict(sorted(self.excluded.items()))
        if self.deceased:
            out["deceased"] = True
        return out


def _status_code(concept: Any) -> str | None:
    if isinstance(concept, str):  # STU3 and DSTU2 carry the status as a bare code
        return concept.strip().lower() or None
    for c in codings(concept):
        if isinstance(c.get("code"), str):
            return c["code"].strip().lower()
    return None


@lru_cache(maxsize=8192)
def _family_keys(families: tuple[str, ...], code: str) -> tuple[CodeKey, ...]:
    return tuple((ICD10CM, FAMILY_MARK + f) for f in families if in_family(code, f))


def _index_keys(keys: Iterable[CodeKey], ruleset: RuleSet) -> tuple[CodeKey, ...]:
    """The keys the rules use: the codes themselves, and the families they belong to."""
    out = []
    index = ruleset.code_index
    for key in keys:
        if key in index:
            out.append(key)
        elif key[0] == ICD10CM and ruleset.families:
            out.extend(_family_keys(ruleset.families, key[1]))
    return tuple(out)


@lru_cache(maxsize=16)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One search for every phrase: most local codes name nothing, and must cost little."""
    return re.compile("|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)))


def _names_phrase(concept: Mapping[str, Any], ruleset: RuleSet) -> bool:
    """Does a code's text or any display name a finding?"""
    if not ruleset.texts:
        return False
    pattern = _phrase_pattern(ruleset.texts)
    texts = [c.get("display") for c in concept.get("coding") or ()] + [concept.get("text")]
    return any(type(t) is str and pattern.search(t.lower()) is not None for t in texts)


def _texts(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    found = [concept["text"]] if isinstance(concept.get("text"), str) else []
    return found + [c["display"] for c in codings(concept) if isinstance(c.get("display"), str)]


def _phrase_keys(record: Mapping[str, Any], keys: Sequence[CodeKey],
                 ruleset: RuleSet) -> tuple[tuple[CodeKey, ...], bool] | None:
    """For a record with no standard code: the phrases its text names, and whether the text
    says they are absent. None when the record is coded, or names nothing."""
    if not ruleset.texts or any(k[0] in STANDARD_SYSTEMS for k in keys):
        return None
    return named_phrases(_texts(record.get("code")), ruleset)


def named_phrases(texts: Iterable[str], ruleset: RuleSet
                  ) -> tuple[tuple[CodeKey, ...], bool] | None:
    """The finding phrases ``texts`` name, and whether they say the patient has none; None when
    they name none."""
    pattern = _phrase_pattern(ruleset.texts)
    found, negated = [], False
    for text in (t.lower() for t in texts):
        for match in pattern.finditer(text):
            found.append((TEXT, match[0]))
            before, after = text[:match.start()], text[match.end():]
            negated |= bool(_NEGATED_BEFORE.search(before) or _SUBTYPE_BEFORE.search(before)
                            or _NEGATED_AFTER.search(after))
    return (tuple(found), negated) if found else None


def _display(concepts: Iterable[Any], ruleset: RuleSet) -> str:
    for concept in concepts:
        if isinstance(concept, dict) and isinstance(concept.get("text"), str):
            return concept["text"]
        for c in codings(concept):
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


class CodedAs(NamedTuple):
    """What a record's code concepts say, whatever else the record holds."""

    written: tuple[CodeKey, ...]  # every usable coding, canonical
    indexed: tuple[CodeKey, ...]  # those a rule uses, and the families they belong to
    display: str
    side: str | None  # the side the codes say


def _coded_as(concepts: list[Any], ruleset: RuleSet) -> CodedAs:
    """Remembered per concept list, keyed by its JSON: a chart repeats its few coded findings,
    and what their codes say depends on nothing else. A list JSON cannot hold, or that does not
    read back as itself (NaN is written as null), is judged each time; a malformed concept
    raises, as it would unremembered."""
    try:
        key = orjson.dumps(concepts).decode()
    except TypeError:
        return _judge_coded(concepts, ruleset)
    memo = ruleset.coded_concepts
    coded = memo.get(key)
    if coded is None:
        coded = _judge_coded(concepts, ruleset)
        if len(memo) < MAX_CODED_CONCEPTS and len(key) <= MAX_REMEMBERED_CHARS and \
                orjson.loads(key) == concepts:
            memo[key] = coded
    return coded


def _judge_coded(concepts: list[Any], ruleset: RuleSet) -> CodedAs:
    written = code_keys(concepts)  # raises for a malformed concept, before anything else reads it
    return CodedAs(written, _index_keys(written, ruleset), _display(concepts, ruleset),
                   side_of_codes(written, ruleset.side_of_code))


def _body_sites(resource: Mapping[str, Any]) -> tuple[CodeKey, ...]:
    sites = resource.get("bodySite")
    if sites is None:
        return ()
    return code_keys(sites if isinstance(sites, list) else [sites])


def _date_text(raw: Any, when: dates.When) -> str | None:
    """What the evidence line shows: the date as sure as it is, never an invented one."""
    if when.start is None:
        return None
    if when.doubt == dates.PARTIAL and isinstance(raw, str):
        return raw.strip()
    return when.start.date().isoformat()


def _when(resource: Mapping[str, Any], rtype: str, now: datetime | None) -> tuple[dates.When, str | None]:
    """The record's date, and the text an evidence line shows for it."""
    when, raw = dates.first_date(resource, DATE_FIELDS[rtype], now)
    return when, _date_text(raw, when)


def _fact(ref: str, record: Mapping[str, Any], coded: CodedAs, keys: tuple[CodeKey, ...],
          ruleset: RuleSet, draft: bool, now: datetime | None,
          doubts: tuple[str, ...] = (), present: bool | None = None) -> Fact | str:
    """A Fact with the finding ``keys``, or the reason (str) the record is ignored under the
    status policy; ``coded`` is what the record's code concepts say."""
    rtype = record["resourceType"]
    sites = _body_sites(record)
    side = record_side(coded.side, sites, ruleset.side_of_code)
    when, date_text = _when(record, rtype, now)
    status = _status_code(record.get("status"))
    tentative, current, value, unit, part_of, resource = False, True, None, None, frozenset(), None
    if rtype == "Condition":
        verification = _status_code(record.get("verificationStatus"))
        if verification in CONDITION_IGNORED:
            return f"verificationStatus {verification}"
        clinical = _status_code(record.get("clinicalStatus"))
        if clinical is None:
            doubts += (STATUS_MISSING,)
        status, present = clinical or "active", present is not False
        tentative = verification in CONDITION_TENTATIVE
        current = clinical is None or clinical in CONDITION_CURRENT
    elif rtype == "Observation":
        if status in OBSERVATION_IGNORED:
            return f"status {status}"
        if status is None:
            doubts += (STATUS_MISSING,)
        tentative, status = status in OBSERVATION_TENTATIVE, status or "unknown"
        value, unit = quantity(record)
        present = is_present(record) if present is None else present
        part_of = binding.references(record, "partOf")
    else:
        present = True  # only a finding's own record (Condition, Observation) can deny it
        if status is None:
            raise UnreadableResource("`status` is missing")
        if rtype == "Procedure":
            if status not in PROCEDURE_COUNTED:
                return f"status {status}"
        elif rtype in ("DiagnosticReport", "ImagingStudy"):
            # Imaging counts as done whatever its report status, unless withdrawn (§2.0.1).
            if status in REPORT_IGNORED:
                return f"status {status}"
        elif status in ORDER_IGNORED:  # ServiceRequest
            return f"status {status}"
        else:
            resource = record if draft else None
    return Fact(ref=ref, resource_type=rtype, codes=keys, display=coded.display, when=when.start,
                status=status, tentative=tentative, current=current, present=present, value=value,
                unit=unit, body_sites=frozenset(sites), laterality=side, part_of=part_of,
                draft=draft, until=when.end, date_doubt=when.doubt, doubts=doubts,
                date_text=date_text, resource=resource)


def normalise(
    ruleset: RuleSet,
    resources: Iterable[Mapping[str, Any]],
    *,
    now: datetime | None = None,
    patient_id: str | None = None,
    draft_orders: Sequence[Mapping[str, Any]] = (),
    selections: Sequence[str] = (),
) -> FactBase:
    """Facts from the patient record and the draft orders (limited to ``selections`` if given).

    With ``patient_id``, a record or draft order of anyone else is excluded; with ``now``, a date
    after it is uncertain. ``draft_orders`` are resources, already taken out of the request's
    Bundle by the protocol layer (or written as a list in a rule's test case).
    """
    base = FactBase([], {}, None, None, 0, 0, [], [])
    records = list(resources)
    selected = set(selections)
    drafts = [r for r in draft_orders
              if not selected or f"{r.get('resourceType')}/{r.get('id')}" in selected]
    plain = _plain_records(records, ruleset) if patient_id is None else None
    if plain is not None:  # the hook path: every record already bound by the prefetch
        base.resources_seen += len(records)
        base.not_coded_for_rules += plain.count(True)
        for resource in compress(records, map(not_, plain)):
            _take(base, ruleset, resource, False, now)
    for draft, items in ((False, records if plain is None else ()), (True, drafts)):
        judge = binding.draft_exclusion if draft else binding.exclusion
        for resource in items:
            base.resources_seen += 1
            if not isinstance(resource, dict):
                base.excluded[binding.UNREADABLE] += 1
                base.skipped.append({"ref": "?", "reason": "not a JSON object"})
            elif patient_id is not None and (excluded := judge(resource, patient_id)):
                base.excluded[excluded] += 1  # no reference kept: it may name another patient
            elif _surely_uncoded(resource, ruleset):  # most of a record: checked in one step
                base.not_coded_for_rules += 1
            else:
                _take(base, ruleset, resource, draft, now)
    return base


def _plain_records(records: list[Any], ruleset: RuleSet) -> list[bool] | None:
    """Per record, ``_surely_uncoded``, for a whole list at once; None when some record is not
    a JSON object (or holds what JSON cannot), for the per-record path to report.

    Most of a chart is the same few hundred kinds of record (a heart rate, a pain score). The
    verdict depends only on a record's code, its coded value and whether it has components or
    contained resources, so it is remembered per kind, keyed by the JSON of exactly those, and
    looked up with ``map``: no Python frame per record. The key is text (``orjson``'s bytes keep
    a 4 KiB block however short), and a kind is remembered only when its key reads back as what
    was judged: ``orjson`` writes NaN as null, and a tuple as a list.
    """
    get = dict.get
    try:
        keys = list(map(bytes.decode, map(orjson.dumps, zip(
            map(get, records, repeat("code")), map(get, records, repeat("valueCodeableConcept")),
            map(contains, records, repeat("component")), map(contains, records, repeat("contained")),
            strict=True))))
    except TypeError:
        return None
    memo = ruleset.record_verdicts
    verdicts = list(map(memo.get, keys))
    if None in verdicts:
        for i, verdict in enumerate(verdicts):
            if verdict is None:
                record, key = records[i], keys[i]
                verdicts[i] = verdict = _surely_uncoded(record, ruleset)
                if len(memo) < MAX_VERDICTS and len(key) <= MAX_REMEMBERED_CHARS and \
                        orjson.loads(key) == _kind(record):
                    memo[key] = verdict
    return verdicts


def _kind(record: Mapping[str, Any]) -> list[Any]:
    """What a record's kind key states (``_plain_records`` builds it a column at a time): the
    members ``_surely_uncoded`` reads."""
    return [record.get("code"), record.get("valueCodeableConcept"), "component" in record,
            "contained" in record]


def red_flag_reasons(order: Mapping[str, Any], ruleset: RuleSet) -> tuple[str, ...]:
    """The red-flag findings a draft order's ``reasonCode`` names, by code or in words."""
    concepts = order.get("reasonCode")
    if not isinstance(concepts, list) or not concepts:
        return ()
    written: list[CodeKey] = []
    texts: list[str] = []
    for concept in concepts:  # one unreadable reason says nothing of the others
        try:
            written += code_keys([concept])
            texts += _texts(concept)
        except UnreadableValue:
            continue
    keys = list(_index_keys(written, ruleset))
    # "r/o cauda equina": a reason in words names the red flag too, unless it denies it.
    phrases = named_phrases(texts, ruleset) if ruleset.texts else None
    keys += phrases[0] if phrases and not phrases[1] else ()
    named = {name for key in keys for name in ruleset.code_index.get(key, ())}
    return tuple(name for name in ruleset.red_flag_findings if name in named)


def _coded_for_rules(ruleset: RuleSet) -> Any:
    def coded(concept: Any) -> bool:
        return bool(_index_keys(code_keys([concept]), ruleset))
    return coded


def _indexed(coding: Any, ruleset: RuleSet) -> bool | None:
    """Does one coding hold a code the rules use (None: not a well-formed coding)?"""
    if type(coding) is not dict:
        return None
    system, code = coding.get("system"), coding.get("code")
    if type(system) is not str or type(code) is not str:
        return None
    verdicts = ruleset.coding_verdicts
    verdict = verdicts.get((system, code))
    if verdict is None:
        key = canonical(system, code)
        verdict = key in ruleset.code_index or key in MEASURED or bool(
            key[0] == ICD10CM and ruleset.families and _family_keys(ruleset.families, key[1]))
        if len(verdicts) < MAX_VERDICTS and len(system) + len(code) <= MAX_REMEMBERED_CHARS:
            verdicts[(system, code)] = verdict
    return verdict


def _concept_names_nothing(concept: Mapping[str, Any], ruleset: RuleSet) -> bool:
    """True when none of a code's codings (written however) is one a rule uses, and, unless one
    of them is a standard code, neither its text nor any display names a finding.

    Remembered per concept as written (text, then every coding's system, code and display): an
    EHR repeats its "Heart rate" rows, and the verdict depends on nothing else. A concept with
    no coding, or with a part that is not a plain JSON value, is not remembered and not judged
    here.
    """
    found = concept.get("coding")
    if type(found) is not list or not found:
        return False
    if len(found) == 1 and type(found[0]) is dict:  # the usual EHR row: one coding
        coding = found[0]
        key: tuple[Any, ...] = (concept.get("text"), coding.get("system"), coding.get("code"),
                                coding.get("display"))
    else:
        parts = [concept.get("text")]
        for coding in found:
            if type(coding) is not dict:
                return False
            parts += (coding.get("system"), coding.get("code"), coding.get("display"))
        key = tuple(parts)
    memo = ruleset.concept_verdicts
    try:
        verdict = memo.get(key)
    except TypeError:  # an object or a list where a string belongs: the full path reports it
        return False
    if verdict is None:
        verdict = _judge_concept(found, concept, ruleset)
        if len(memo) < MAX_VERDICTS and \
                sum(len(p) for p in key if type(p) is str) <= MAX_REMEMBERED_CHARS:
            memo[key] = verdict
    return verdict


def _judge_concept(found: list[Any], concept: Mapping[str, Any], ruleset: RuleSet) -> bool:
    standard = False
    for coding in found:
        if _indexed(coding, ruleset) is not False:
            return False
        standard = standard or canonical_system(coding["system"]) in STANDARD_SYSTEMS
    return standard or not _names_phrase(concept, ruleset)


def _surely_uncoded(resource: Mapping[str, Any], ruleset: RuleSet) -> bool:
    """Fast path for most of a record: a plain coded resource none of whose codes (written
    however) a rule uses, whose text names no finding, with no component, contained resource
    or coded value to look into.

    Anything unusual returns False and takes the full path, which reports it.
    """
    concept = resource.get("code")
    if type(concept) is not dict or "component" in resource or "contained" in resource \
            or not _concept_names_nothing(concept, ruleset):
        return False
    value = resource.get("valueCodeableConcept")
    if value is None:
        return True
    if type(value) is not dict:
        return False
    codings_of_value = value.get("coding")
    if not codings_of_value:
        return True
    if type(codings_of_value) is not list:
        return False
    for coding in codings_of_value:  # noqa: SIM110 - a generator costs a frame per record
        if _indexed(coding, ruleset):
            return False
    return True


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id', '?')}"


def _patient(base: FactBase, resource: Mapping[str, Any]) -> None:
    if base.patient_ref is not None:
        return
    base.patient_ref = _ref(resource)
    born = dates.read_date(resource.get("birthDate"))
    base.birth_date = born.start.date() if born.start and born.doubt in (None, dates.PARTIAL) \
        else None
    base.deceased = resource.get("deceasedBoolean") is True or \
        resource.get("deceasedDateTime") is not None


def _take(base: FactBase, ruleset: RuleSet, resource: dict[str, Any], draft: bool,
          now: datetime | None) -> None:
    """A resource of the patient that may hold a finding: its facts, or why it has none."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        _patient(base, resource)
        return
    if rtype not in FACT_TYPES:
        base.not_coded_for_rules += 1
        return
    taken = False
    try:
        found = (places(resource, _coded_for_rules(ruleset)) if not _withdrawn(resource)
                 else [(_ref(resource), resource)])
        for ref, record in found:
            if record is ANOTHER_PATIENT:
                base.excluded[binding.OTHER_PATIENT] += 1
                continue
            taken |= _take_record(base, ruleset, ref, record, draft, now)
    except (UnreadableResource, UnreadableValue) as exc:
        base.excluded[binding.UNREADABLE] += 1
        base.skipped.append({"ref": _ref(resource), "reason": str(exc)})
        return
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        base.excluded[binding.UNREADABLE] += 1
        base.skipped.append({"ref": _ref(resource), "reason": f"unreadable: {exc}"})
        return
    if not taken:
        base.not_coded_for_rules += 1


def _withdrawn(resource: Mapping[str, Any]) -> bool:
    if resource.get("resourceType") == "Condition":
        return _status_code(resource.get("verificationStatus")) in CONDITION_IGNORED
    return _status_code(resource.get("status")) in WITHDRAWN


def _take_record(base: FactBase, ruleset: RuleSet, ref: str, record: Mapping[str, Any],
                 draft: bool, now: datetime | None) -> bool:
    """Add the fact of one place; True when the place mattered to some rule."""
    coded = _coded_as(_code_concepts(record), ruleset)
    keys, indexed = coded.written, coded.indexed
    if record.get("resourceType") == "Observation" and not MEASURED.isdisjoint(keys):
        indexed += measured_findings(keys, *quantity(record))
    doubts: tuple[str, ...] = ()
    present = None
    if not indexed:
        phrases = _phrase_keys(record, keys, ruleset)
        if phrases is None:
            return False
        indexed, negated = phrases
        doubts, present = (UNCODED,), (False if negated else None)
    fact = _fact(ref, record, coded, indexed, ruleset, draft, now, doubts, present)
    if isinstance(fact, str):
        base.ignored.append({"ref": ref, "reason": fact})
        return True
    base.facts.append(fact)
    index = ruleset.code_index
    for name in dict.fromkeys(n for key in indexed for n in index.get(key, ())):
        base.by_finding.setdefault(name, []).append(fact)
    return True
