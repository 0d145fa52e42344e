"""Whose record (clinical reference §2.0.1): ``binding.bound`` takes a whole Bundle at once and
must judge every record exactly as ``binding.exclusion`` judges it alone, its quick path for the
usual ``Patient/<id>`` subject included."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from service.engine.binding import NO_PATIENT_REFERENCE, OTHER_PATIENT, WRONG_RESOURCE_TYPE, bound, exclusion

PID = "bind-1"


def _obs(**fields: object) -> dict:
    return {"resourceType": "Observation", "id": "o1", "status": "final", **fields}


CASES = [
    # (record, the type the query asked for, the reason it is excluded or None when it counts)
    (_obs(subject={"reference": f"Patient/{PID}"}), "Observation", None),
    (_obs(subject={"reference": f"Patient/{PID}"}), None, None),
    (_obs(subject={"reference": f"https://ehr.example.org/fhir/Patient/{PID}"}), "Observation", None),
    (_obs(subject={"reference": f"Patient/{PID}/_history/3"}), "Observation", None),
    ({"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": f"Patient/{PID}"}},
     None, None),
    ({"resourceType": "Patient", "id": PID}, "Patient", None),
    (_obs(subject={"reference": "Patient/someone-else"}), "Observation", OTHER_PATIENT),
    (_obs(subject={"reference": f"Patient/{PID}-2"}), "Observation", OTHER_PATIENT),
    # A Patient is its own subject: a reference inside it to the context patient does not make
    # another patient's record ours.
    ({"resourceType": "Patient", "id": "someone-else", "patient": {"reference": f"Patient/{PID}"}},
     None, OTHER_PATIENT),
    ({"resourceType": "Patient", "id": "someone-else", "subject": {"reference": f"Patient/{PID}"}},
     "Patient", OTHER_PATIENT),
    ({"resourceType": "Condition", "id": "c1", "subject": {"reference": f"Patient/{PID}"}},
     "Observation", WRONG_RESOURCE_TYPE),
    (_obs(subject={"reference": f"Patient/{PID}"}, resourceType=None), "Observation",
     WRONG_RESOURCE_TYPE),
    (_obs(), "Observation", NO_PATIENT_REFERENCE),
    (_obs(subject=f"Patient/{PID}"), "Observation", NO_PATIENT_REFERENCE),
    (_obs(subject={"reference": 7}), "Observation", NO_PATIENT_REFERENCE),
    (_obs(subject={"display": PID}), "Observation", NO_PATIENT_REFERENCE),
]


@pytest.mark.parametrize(("record", "expected_type", "reason"), CASES)
def test_a_record_in_a_bundle_is_judged_as_it_is_alone(record, expected_type, reason):
    assert exclusion(record, PID, expected_type) == reason
    excluded: Counter[str] = Counter()
    kept = list(bound([record], PID, expected_type, excluded))
    assert kept == ([record] if reason is None else [])
    assert excluded == (Counter() if reason is None else Counter({reason: 1}))


def test_a_mixed_bundle_keeps_the_patients_records_in_order_and_counts_the_rest():
    records = [record for record, _, _ in CASES]
    excluded: Counter[str] = Counter()
    kept = list(bound(records, PID, "Observation", excluded))
    assert kept == [r for r in records if exclusion(r, PID, "Observation") is None]
    assert len(kept) == 4  # the first four cases: Observations of the context patient
    assert excluded == Counter(filter(None, (exclusion(r, PID, "Observation") for r in records)))
    assert sum(excluded.values()) == len(records) - 4


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("expected_type", ["Observation", None])
def test_a_bundle_of_any_mix_is_judged_record_by_record(seed, expected_type):
    """Most records take the quick path (the patient's, of the type asked for); records that do
    not, wherever they stand among them, are judged as ``exclusion`` judges them alone."""
    rng = random.Random(seed)
    plain = CASES[0][0]
    records = [dict(plain, id=f"o{n}") for n in range(rng.randrange(1, 30))]
    for _ in range(rng.choice((0, 1, 1, 2, 5))):
        records.insert(rng.randrange(len(records) + 1), rng.choice(CASES)[0])
    excluded: Counter[str] = Counter()
    kept = list(bound(records, PID, expected_type, excluded))
    assert kept == [r for r in records if exclusion(r, PID, expected_type) is None]
    assert excluded == Counter(filter(None, (exclusion(r, PID, expected_type) for r in records)))
