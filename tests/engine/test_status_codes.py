"""Condition status as R4 CodeableConcept or as the bare code of STU3/DSTU2 servers."""

from __future__ import annotations

import pytest

from service.engine.facts import normalise


def sciatica(**status) -> dict:
    return {
        "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "23056005"}]},
        "onsetDateTime": "2026-01-05", **status,
    }


R4_ACTIVE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                         "code": "active"}]}


@pytest.mark.parametrize(
    ("status", "current"),
    [
        ({"clinicalStatus": R4_ACTIVE}, True),
        ({"clinicalStatus": "active"}, True),
        ({"clinicalStatus": "resolved"}, False),
    ],
    ids=["r4-active", "stu3-active", "stu3-resolved"],
)
def test_clinical_status_is_read_in_either_form(ruleset, status, current):
    base = normalise(ruleset, [sciatica(**status)])
    assert not base.skipped
    (fact,) = base.facts
    assert fact.current is current


def test_entered_in_error_as_a_bare_code_is_ignored(ruleset):
    base = normalise(ruleset, [sciatica(clinicalStatus="active", verificationStatus="entered-in-error")])
    assert base.facts == []
    assert base.ignored and "entered-in-error" in base.ignored[0]["reason"]
