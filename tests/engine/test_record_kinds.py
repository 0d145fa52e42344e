"""The normaliser remembers verdicts per kind, whatever the records hold, and must give the facts,
counts and trace it gives unremembered: the hook path judges a bound list of records per kind
at once (``facts._plain_records``), and what a record's code concepts say is remembered per
concept list (``facts._coded_as``).

Random records mix what EHRs send with what a hostile caller could: red-flag codes, local codes
with texts that name (or deny) a red flag, coded values, components, contained resources, and
members of the wrong JSON type. The same kind of record is sent many times, so the memo is both
filled and read.
"""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from typing import Any

import pytest

from service.engine import facts
from service.engine.facts import normalise
from tests.engine.ehr_records import (
    ABSENT,
    FEVER,
    ICD,
    LOINC,
    NOW,
    NUMB_LEG,
    PID,
    PRESENT,
    RETENTION,
    RULESET,
    SCT,
    obs,
    patient,
)

LOCAL = "http://ehr.example.org/fhir/CodeSystem/flowsheet-row"
TEXTS = ("Heart rate", "urinary retention", "no urinary retention", "Bladder scan",
         "cauda equina syndrome", "Saddle anaesthesia: denied", "Pain score")
RIGHT = {"coding": [{"system": SCT, "code": "24028007"}]}
LEFT = {"coding": [{"system": SCT, "code": "7771000"}]}
CODINGS = ((SCT, RETENTION), (SCT, NUMB_LEG), (SCT, FEVER), (LOINC, "8867-4"), (ICD, "G83.4"),
           (ICD, "M16.11"), (LOCAL, "row-1"), (LOCAL, "row-2"), ("urn:oid:1.2.3", "x"))


def _concept(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([None, "267064002", ["not", "an", "object"], 7, {}])
    codings: Any = []
    for _ in range(rng.choice((0, 1, 1, 1, 2))):
        system, code = rng.choice(CODINGS)
        coding: dict[str, Any] = {"system": system, "code": code}
        if rng.random() < 0.5:
            coding["display"] = rng.choice(TEXTS)
        if rng.random() < 0.03:
            coding["display"] = ["Urinary", "retention"]
        codings.append(coding)
    if rng.random() < 0.03:
        codings = {"system": SCT, "code": RETENTION}
    out: dict[str, Any] = {"coding": codings}
    if rng.random() < 0.4:
        out["text"] = rng.choice(TEXTS)
    return out


def _record(rng: random.Random, code: Any) -> dict[str, Any]:
    kind = rng.choice(("Observation", "Observation", "Condition", "Procedure", "Encounter",
                       "ImagingStudy"))
    record: dict[str, Any] = {"resourceType": kind, "code": copy.deepcopy(code),
                              "subject": {"reference": f"Patient/{PID}"}}
    if kind == "ImagingStudy":
        record["procedureCode"] = [copy.deepcopy(code), _concept(rng)]
        record["started"] = "2026-02-27"
    if rng.random() < 0.3:
        record["bodySite"] = [rng.choice((RIGHT, LEFT, {"text": "hip"}))]
    if kind == "Observation":
        record["status"] = rng.choice(("final", "preliminary", "entered-in-error", None))
        record["effectiveDateTime"] = rng.choice(("2026-02-20", "2026-02-28T09:00:00Z", "2026-13-01"))
        if rng.random() < 0.5:
            record["valueCodeableConcept"] = rng.choice(
                (PRESENT, ABSENT, {"coding": [{"system": SCT, "code": RETENTION}]}, _concept(rng), "yes"))
        if rng.random() < 0.2:
            record["component"] = [{"code": {"coding": [{"system": SCT, "code": RETENTION}]},
                                    "valueCodeableConcept": PRESENT}]
    elif kind == "Condition":
        record["clinicalStatus"] = {"coding": [{"code": rng.choice(("active", "resolved"))}]}
        record["onsetDateTime"] = "2026-02-25"
    else:
        record["status"] = rng.choice(("completed", "in-progress", "available"))
    if rng.random() < 0.2:  # a panel member or a Condition's evidence, written inside it
        record["contained"] = [{"resourceType": "Observation", "id": "m1", "status": "final",
                                "code": {"coding": [{"system": SCT, "code": RETENTION}]},
                                "valueCodeableConcept": PRESENT}]
        record["hasMember"] = [{"reference": "#m1"}]
        record["evidence"] = [{"detail": [{"reference": "#m1"}]}]
    return record


def _summary(base: facts.FactBase) -> Any:
    return (base.trace(), [(f.ref, f.codes, f.display, f.laterality, f.body_sites, f.present,
                            f.doubts, f.when, f.date_text, f.status, f.value) for f in base.facts],
            {name: [f.ref for f in found] for name, found in base.by_finding.items()}, base.excluded)


def _chart(rng: random.Random) -> list[Any]:
    codes = [_concept(rng) for _ in range(4)]  # each code in several kinds of record
    kinds = [_record(rng, rng.choice(codes)) for _ in range(16)]
    return [patient()] + [copy.deepcopy(rng.choice(kinds)) | {"id": f"c{n}"} for n in range(60)]


@pytest.mark.parametrize("seed", range(40))
def test_a_bound_list_gives_the_facts_of_the_one_by_one_path(seed: int, monkeypatch) -> None:
    records = _chart(random.Random(seed))
    ruleset = replace(RULESET)  # nothing remembered yet
    per_kind = [_summary(normalise(ruleset, copy.deepcopy(records), now=NOW)) for _ in range(2)]
    assert ruleset.record_verdicts  # the list path ran, and filled its memo
    monkeypatch.setattr(facts, "_plain_records", lambda *_: None)
    one_by_one = _summary(normalise(replace(RULESET), copy.deepcopy(records), now=NOW))
    assert per_kind[0] == one_by_one
    assert per_kind[1] == one_by_one  # read from the memo


def test_a_list_with_a_record_that_is_not_an_object_is_read_one_by_one() -> None:
    records = [patient(), "not a record", obs(RETENTION, rid="o1", when="2026-02-28")]
    ruleset = replace(RULESET)
    base = normalise(ruleset, records, now=NOW)
    assert base.skipped == [{"ref": "?", "reason": "not a JSON object"}]
    assert [f.ref for f in base.facts] == ["Observation/o1"]
    assert ruleset.record_verdicts == {}


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), ("not", "json")])
def test_a_kind_that_json_cannot_write_exactly_is_judged_but_not_kept(odd: Any) -> None:
    """orjson writes NaN and Infinity as null, a tuple as a list. Parsed JSON holds none of
    them (the request body and every JSON file are read with orjson, which refuses NaN); a
    Python caller's record that does is judged, and never remembered for a record of JSON."""
    ruleset = replace(RULESET)
    harmless = {"resourceType": "Observation", "id": "h", "status": "final",
                "code": {"coding": [{"system": LOCAL, "code": "row-1"}]},
                "valueCodeableConcept": {"coding": None}}
    odd_one = dict(harmless, id="o", valueCodeableConcept={"coding": odd})
    assert normalise(ruleset, [odd_one], now=NOW).excluded == {"unreadable": 1}
    assert ruleset.record_verdicts == {}
    assert normalise(ruleset, [harmless], now=NOW).not_coded_for_rules == 1  # the twin: kept
    assert list(ruleset.record_verdicts.values()) == [True]


@pytest.mark.parametrize("patient_id", [None, PID])
@pytest.mark.parametrize("seed", range(30))
def test_what_codes_say_is_remembered_per_concept_list_without_changing_a_fact(
        seed: int, patient_id: str | None, monkeypatch) -> None:
    records = _chart(random.Random(1000 + seed))
    ruleset = replace(RULESET)
    remembered = [_summary(normalise(ruleset, copy.deepcopy(records), now=NOW, patient_id=patient_id))
                  for _ in range(2)]
    assert ruleset.coded_concepts  # filled, then read
    monkeypatch.setattr(facts, "_coded_as", facts._judge_coded)
    judged = _summary(normalise(replace(RULESET), copy.deepcopy(records), now=NOW,
                                patient_id=patient_id))
    assert remembered == [judged, judged]


@pytest.mark.parametrize("odd", [float("nan"), ("not", "json")])
def test_a_concept_that_json_cannot_write_exactly_is_judged_but_not_kept(odd: Any) -> None:
    """A NaN display would be written as null, and a tuple as a list: such a concept list is
    judged each time, and its JSON twin is remembered."""
    ruleset = replace(RULESET)
    coding = {"system": SCT, "code": RETENTION}
    odd_one = obs(RETENTION, rid="o", when="2026-02-28")
    odd_one["code"] = {"coding": [dict(coding, display=odd)]}
    [fact] = normalise(ruleset, [odd_one], now=NOW).facts
    assert fact.codes == ((SCT, RETENTION),)
    assert ruleset.coded_concepts == {}
    twin = obs(RETENTION, rid="t", when="2026-02-28")
    twin["code"] = {"coding": [dict(coding, display=None)]}
    [fact] = normalise(ruleset, [twin], now=NOW).facts
    assert fact.display == "Retention of urine" and len(ruleset.coded_concepts) == 1
