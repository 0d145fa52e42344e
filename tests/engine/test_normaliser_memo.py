"""The normaliser remembers, per code as an EHR wrote it, that a record names nothing the rules
use. An EHR repeats its local rows ("Heart rate") thousands of times, but the same local code
can carry a different text on each record: what is remembered must never hide a red flag, nor
turn a negated one present (clinical reference §2.0.1, text-only and locally coded records).

Each case runs on both paths: records checked one by one against the context patient (the CLI,
the rule tests), and a list already bound by the prefetch, judged per kind of record at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from service.engine import evaluate, facts
from tests.engine.ehr_records import NOW, PID, RULESET, cond, obs, patient

CES = "cauda-equina"
LOCAL = "http://ehr.example.org/fhir/CodeSystem/flowsheet-row"


def local(text: str | None = None, display: Any = None, code: str = "row-7") -> dict[str, Any]:
    coding: dict[str, Any] = {"system": LOCAL, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding], **({"text": text} if text is not None else {})}


@pytest.fixture
def ruleset():
    """A copy of the rule set with nothing remembered yet; every call below shares its memo."""
    return replace(RULESET)


@pytest.fixture(params=[PID, None], ids=["one-by-one", "bound-list"], autouse=True)
def patient_id(request) -> str | None:
    return request.param


@pytest.fixture
def fired(patient_id):
    def fired(ruleset, *records: dict[str, Any]) -> set[str]:
        ev = evaluate(ruleset, [patient(), *records], now=NOW, patient_id=patient_id)
        return {d.rule_id for d in ev.active}
    return fired


def test_one_local_code_is_judged_by_the_text_of_each_record(ruleset, fired):
    assert fired(ruleset, obs(local("Heart rate"))) == set()
    assert CES in fired(ruleset, obs(local("urinary retention")))
    assert CES not in fired(ruleset, obs(local("no urinary retention")))
    assert CES in fired(ruleset, obs(local("urinary retention")))
    assert fired(ruleset, obs(local("Heart rate"))) == set()


def test_one_local_code_is_judged_by_its_display_too(ruleset, fired):
    assert fired(ruleset, obs(local(display="Heart rate"))) == set()
    assert CES in fired(ruleset, obs(local(display="Urinary retention")))
    assert CES not in fired(ruleset, obs(local(display="Urinary retention: denied")))


def test_a_negated_text_seen_first_does_not_make_the_plain_one_absent(ruleset, fired):
    assert CES not in fired(ruleset, cond(local("no cauda equina syndrome")))
    assert CES in fired(ruleset, cond(local("cauda equina syndrome")))
    assert CES not in fired(ruleset, cond(local("no cauda equina syndrome")))


def test_the_same_text_under_another_code_is_judged_again(ruleset, fired):
    assert fired(ruleset, obs(local("Bladder scan", code="row-1"))) == set()
    assert CES in fired(ruleset, obs(local("Bladder scan: urinary retention", code="row-1")))
    assert fired(ruleset, obs(local("Bladder scan", code="row-2"))) == set()


def test_the_memo_is_bounded_and_still_finds_red_flags_when_full(ruleset, fired, monkeypatch):
    monkeypatch.setattr(facts, "MAX_VERDICTS", 5)
    for n in range(20):
        assert fired(ruleset, obs(local(f"Local observation {n}", code=f"row-{n}"))) == set()
    assert len(ruleset.concept_verdicts) == 5
    assert len(ruleset.record_verdicts) <= 5
    assert CES in fired(ruleset, obs(local("urinary retention", code="row-99")))
    assert fired(ruleset, obs(local("Local observation 19", code="row-19"))) == set()


def test_a_code_with_a_part_that_is_no_plain_value_is_read_in_full(ruleset, fired):
    odd = local("urinary retention", display=["Urinary", "retention"])
    assert CES in fired(ruleset, obs(odd))
    assert ruleset.concept_verdicts == {}


def test_a_long_text_is_judged_but_not_kept(ruleset, fired, patient_id):
    """A caller cannot fill a worker's memory with long texts; a short row is still remembered."""
    long_plain = "Local observation " + "x" * 600
    assert fired(ruleset, obs(local(long_plain, code="row-1"))) == set()
    assert CES in fired(ruleset, obs(local(long_plain + " urinary retention", code="row-1")))
    assert ruleset.concept_verdicts == {}
    assert not any("x" * 600 in kind for kind in ruleset.record_verdicts)
    assert fired(ruleset, obs(local("Heart rate", code="row-2"))) == set()
    assert len(ruleset.concept_verdicts) == 1
    assert any("Heart rate" in kind for kind in ruleset.record_verdicts) == (patient_id is None)


def test_a_long_code_is_judged_but_not_kept(ruleset, fired):
    long_code = "row-" + "9" * 600
    assert fired(ruleset, obs(local("Heart rate", code=long_code))) == set()
    assert (LOCAL, long_code) not in ruleset.coding_verdicts
    assert fired(ruleset, obs(local("Heart rate", code="row-3"))) == set()
    assert (LOCAL, "row-3") in ruleset.coding_verdicts
