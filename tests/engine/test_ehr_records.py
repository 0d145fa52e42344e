"""Records as real EHRs send them (clinical reference §2.0.1), through the whole engine.

Each negative case has a positive twin, so an engine that answers nothing fails as surely as one
that reads an absent finding as present.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.engine import dates
from tests.engine.ehr_records import (
    ABSENT,
    FEVER,
    ICD,
    LOCAL,
    LOINC,
    NOW,
    NUMB_LEG,
    PID,
    PRESENT,
    RETENTION,
    SCT,
    ago,
    ahead,
    back_pain,
    card,
    concept,
    cond,
    day_ago,
    fired,
    mri_draft,
    obs,
    patient,
    run,
)

CES = "cauda-equina"
R2 = "progressive-neuro-deficit"
R3 = "serious-pathology"
R4 = "early-lumbar-imaging"
GAP = "documentation-gap"


# --- dates -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "reason"), [
    (None, "date missing"),
    ("yesterday", "date unreadable"),
    ("2026-13-45", "date unreadable"),
    (ahead(days=3), "date in the future"),
    ("2026-03", "date partial"),
    ("2026", "date partial"),
    # Past the calendar's ends once the day, the month or the zone is applied; EHRs write
    # 9999-12-31 for "no end".
    ("9999-12-31", "date unreadable"),
    ("9999-12", "date unreadable"),
    ("9999-12-31T23:00:00-05:00", "date unreadable"),
    ("0001-01-01T00:00:00+01:00", "date unreadable"),
])
def test_a_retention_with_an_uncertain_date_fires_r1_and_the_card_says_why(when, reason):
    ev = run(obs(RETENTION, rid="ret", when=when))
    assert CES in fired(ev)
    detail = card(ev, CES)["detail"]
    assert "Observation/ret" in detail and reason in detail


@pytest.mark.parametrize(("when", "once_past"), [
    ("2026-03-03", None), (" 2026-03-03T08:00:00Z ", None), ("2026-04", dates.PARTIAL)])
def test_a_date_is_in_the_future_only_while_it_is_ahead_of_now(when, once_past):
    """Date texts are read once and remembered; whether one is ahead of now is asked each time."""
    later = NOW + timedelta(days=45)
    doubts = [dates.read_date(when, now).doubt for now in (NOW, later, NOW, later)]
    assert doubts == [dates.FUTURE, once_past, dates.FUTURE, once_past]


@pytest.mark.parametrize("born", ["9999-12-31", "9999-12", "1970-05-05"])
def test_a_birth_date_at_the_calendars_end_leaves_the_red_flag(born):
    """An unreadable birth date makes the age unknown: red-flag rules still run."""
    ev = run(patient(birthDate=born), obs(RETENTION), with_patient=False)
    assert CES in fired(ev)


def test_an_absent_retention_with_an_uncertain_date_is_still_absent():
    assert CES not in fired(run(obs(RETENTION, when=None, value=ABSENT)))
    assert CES not in fired(run(obs(RETENTION, when="yesterday", value=ABSENT)))


def test_a_partial_date_wholly_outside_the_window_is_not_recent():
    assert CES not in fired(run(obs(RETENTION, when="2019")))
    assert CES not in fired(run(obs(RETENTION, when="2025-12")))
    assert CES in fired(run(obs(RETENTION, when="2026-02")))   # Feb 2026 overlaps 14 d to 1 March


def test_date_only_counts_the_whole_calendar_day():
    assert CES in fired(run(obs(RETENTION, when=day_ago(14))))
    assert CES not in fired(run(obs(RETENTION, when=day_ago(15))))
    ev = run(obs(RETENTION, rid="d14", when=day_ago(14)))
    assert "uncertain" not in card(ev, CES)["detail"]


def test_an_unreadable_onset_does_not_drop_a_ces_diagnosis():
    diagnosis = cond(concept(ICD, "G83.4"), onsetDateTime="last spring")
    assert CES in fired(run(diagnosis))
    assert CES in fired(run(cond(concept(ICD, "G83.4"))))


@pytest.mark.parametrize("onset", [
    {"onsetString": "two hours ago"},
    {"onsetAge": {"value": 55, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}},
])
def test_onset_string_and_age_make_a_ces_sign_date_uncertain(onset):
    ev = run(cond(concept(ICD, "R33.9"), rid="r339", **onset))
    assert CES in fired(ev)
    assert "date" in card(ev, CES)["detail"]


def test_onset_period_start_is_the_onset():
    inside = cond(FEVER, onsetPeriod={"start": ago(days=5), "end": ago(days=2)})
    outside = cond(FEVER, onsetPeriod={"start": ago(days=40), "end": ago(days=35)})
    assert R3 in fired(run(back_pain(), inside))
    assert R3 not in fired(run(back_pain(), outside))


def test_issued_is_the_date_when_effective_is_missing():
    recent = obs(RETENTION, rid="iss", when=None, issued=ago(days=2))
    old = obs(RETENTION, when=None, issued=ago(days=20))
    ev = run(recent)
    assert CES in fired(ev)
    assert "date missing" not in card(ev, CES)["detail"]
    assert CES not in fired(run(old))


# --- statuses ----------------------------------------------------------------------------------

def test_a_red_flag_without_status_fires_with_status_uncertain():
    ev = run(obs(RETENTION, rid="nostat", status=None))
    assert CES in fired(ev)
    assert "status missing" in card(ev, CES)["detail"]
    assert CES not in fired(run(obs(RETENTION, status="entered-in-error")))


@pytest.mark.parametrize("status", ["FINAL", "Final", " final "])
def test_statuses_compare_case_insensitively(status):
    ev = run(obs(RETENTION, status=status))
    assert CES in fired(ev)
    assert "status missing" not in card(ev, CES)["detail"]


@pytest.mark.parametrize("status", ["Entered-In-Error", "CANCELLED"])
def test_ignored_statuses_compare_case_insensitively(status):
    assert CES not in fired(run(obs(RETENTION, status=status)))


def test_condition_statuses_compare_case_insensitively():
    assert CES in fired(run(cond(concept(ICD, "G83.4"), clinical="Active")))
    assert CES not in fired(run(cond(concept(ICD, "G83.4"), verification="REFUTED")))


def test_routine_rules_do_not_use_uncertain_records():
    draft = mri_draft()
    dated = cond("279039007", onset=ago(days=10))
    undated = cond("279039007", onsetString="a while ago")
    assert R4 in fired(run(dated, hook="order-select", drafts=draft))
    ev = run(undated, hook="order-select", drafts=draft)
    assert R4 not in fired(ev) and GAP in fired(ev)


# --- codes -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("system", "code"), [
    (ICD, "G834"), (ICD, " g83.4 "), (ICD, "g83.4"),
    ("http://hl7.org/fhir/sid/icd-10", "G83.4"),
    ("urn:oid:2.16.840.1.113883.6.90", "G83.4"),
    ("urn:oid:2.16.840.1.113883.6.3", "G83.4"),  # WHO ICD-10, as its URL above
    (ICD + "/", "G83.4"),
    (SCT, "192970008"), (SCT + "/", "192970008"),
    ("urn:oid:2.16.840.1.113883.6.96", "192970008"),
])
def test_a_ces_diagnosis_however_written_fires_r1(system, code):
    assert CES in fired(run(cond(concept(system, code))))


def test_a_code_outside_the_value_set_is_not_ces_however_written():
    assert CES not in fired(run(cond(concept(ICD, "M5450"))))
    assert CES not in fired(run(cond(concept("urn:oid:2.16.840.1.113883.6.96", "279039007"))))


@pytest.mark.parametrize("system", [SCT + "/", "urn:oid:2.16.840.1.113883.6.96"])
def test_a_retention_finding_under_a_snomed_alias_fires_r1(system):
    assert CES in fired(run(obs(concept(system, RETENTION))))


def test_breast_cancer_history_z85_3_is_in_the_z85_family():
    history = cond(concept(ICD, "Z85.3"), clinical="resolved")
    assert R3 in fired(run(back_pain(), history))
    assert R3 in fired(run(back_pain(), cond(concept(ICD, "Z853"), clinical="resolved")))
    assert R3 not in fired(run(back_pain()))


@pytest.mark.parametrize("code", ["R33.8", "R338", "R33.0", "R33.9"])
def test_any_retention_of_urine_in_the_r33_family_fires_r1(code):
    assert CES in fired(run(cond(concept(ICD, code), onset=ago(days=2))))


def test_codes_beside_the_r33_family_are_not_retention():
    assert CES not in fired(run(cond(concept(ICD, "R34"), onset=ago(days=2))))
    assert CES not in fired(run(cond(concept(ICD, "R33.8"), verification="refuted", onset=ago(days=2))))


def _mri_ordered_for(reason):
    draft = mri_draft()
    draft["entry"][0]["resource"]["reasonCode"] = [reason]
    return draft


@pytest.mark.parametrize("reason", [concept(ICD, "G83.4"), concept(ICD, "R33.9"),
                                    concept(SCT, RETENTION)], ids=["ces", "retention-icd", "retention"])
def test_an_mri_ordered_for_a_red_flag_is_never_advised_against(reason):
    """§2.0.1 Order time: R4 never advises removing a lumbar imaging order while any red-flag
    evidence exists; the order's own reason is such evidence."""
    lbp = cond(concept(ICD, "M54.5"), onset=ago(days=10))
    ev = run(lbp, hook="order-select", drafts=_mri_ordered_for(reason))
    assert R4 not in fired(ev)
    assert not any(v == "not-appropriate" for v in ev.pama.values())
    routine = _mri_ordered_for(concept(ICD, "M54.50"))  # low back pain: R4 still guards
    assert R4 in fired(run(lbp, hook="order-select", drafts=routine))


@pytest.mark.parametrize("reason", [{"text": "r/o cauda equina syndrome"},
                                    {"coding": [{"system": "urn:oid:1.2.3.4", "code": "X9",
                                                 "display": "Suspected cauda equina"}],
                                     "text": "Suspected cauda equina syndrome"}],
                         ids=["text", "local-code"])
def test_an_mri_ordered_for_a_red_flag_named_in_text_is_never_advised_against(reason):
    lbp = cond(concept(ICD, "M54.5"), onset=ago(days=10))
    assert R4 not in fired(run(lbp, hook="order-select", drafts=_mri_ordered_for(reason)))
    denied = _mri_ordered_for({"text": "LBP, no cauda equina syndrome"})
    assert R4 in fired(run(lbp, hook="order-select", drafts=denied))


@pytest.mark.parametrize("reason", ["R33.9", {"coding": "R33.9"}, [1], None])
def test_an_unreadable_order_reason_says_nothing_and_breaks_nothing(reason):
    lbp = cond(concept(ICD, "M54.5"), onset=ago(days=10))
    draft = mri_draft()
    draft["entry"][0]["resource"]["reasonCode"] = [reason, concept(ICD, "M54.50")]
    assert R4 in fired(run(lbp, hook="order-select", drafts=draft))


def test_retired_m54_5_counts_as_low_back_pain():
    draft = mri_draft()
    lbp = cond(concept(ICD, "M54.5"), onset=ago(days=10))
    assert R4 in fired(run(lbp, hook="order-select", drafts=draft))
    assert R4 not in fired(run(hook="order-select", drafts=draft))


def test_a_text_only_record_naming_ces_is_a_red_flag_uncoded():
    ev = run(cond({"text": "Cauda equina syndrome"}, rid="txt"))
    assert CES in fired(ev)
    detail = card(ev, CES)["detail"]
    assert "Condition/txt" in detail and "uncoded" in detail
    assert CES not in fired(run(cond({"text": "low back pain"})))


@pytest.mark.parametrize("text", ["Urinary incontinence", "Incontinence of urine",
                                  "Loss of bladder control", "Loss of bowel control",
                                  "Bowel incontinence", "Bladder incontinence"])
@pytest.mark.parametrize("make", [lambda c: cond(c, onset=ago(days=2)), lambda c: obs(c, when=ago(days=2))],
                         ids=["condition", "observation"])
def test_a_text_only_sphincter_disturbance_is_a_red_flag(text, make):
    """Reference 1.5: loss of bowel or bladder control; 2.1 VS-CES: urinary incontinence."""
    assert CES in fired(run(make({"text": text})))
    assert CES not in fired(run(make({"text": f"No {text.lower()}"})))


@pytest.mark.parametrize("code", [{"text": "Cauda equina syndrome"}, concept(SCT, "192970008"),
                                  concept(ICD, "G83.4")], ids=["text", "snomed", "icd"])
def test_cauda_equina_recorded_as_a_recent_observation_is_a_red_flag(code):
    """Some EHRs chart an assessment as an Observation: a recent one naming CES counts."""
    assert CES in fired(run(obs(code, when=ago(days=2))))
    assert CES not in fired(run(obs(code, when=ago(days=400))))


@pytest.mark.parametrize("text", [
    "Urinary incontinence: no", "Bladder incontinence - none", "Bowel incontinence: N",
    "Loss of bladder control? No", "Screened for bladder incontinence: none",
    "Urinary retention: no. Back pain: yes",
    "Family history of bowel incontinence", "FHx: urinary incontinence",
    "Stress urinary incontinence", "Urge urinary incontinence", "Mixed urinary incontinence (chronic)",
    "Post-prostatectomy urinary incontinence",
])
def test_a_text_answering_no_or_naming_no_sign_of_the_patients_is_no_red_flag(text):
    """A form's answer after the phrase or a relative's history says the patient has no such
    sign; a named chronic subtype (coded N39.3, N39.41, N39.46: not in VS-CES) is no sphincter
    sign of CES."""
    assert CES not in fired(run(obs({"text": text}, value=None, when=ago(days=1))))


@pytest.mark.parametrize("text", [
    "Urinary incontinence: yes", "Urinary incontinence with no pain", "Overflow urinary incontinence",
    "History of present illness: urinary retention since yesterday",
    "History of urinary incontinence", "Urinary retention resolved after catheter",
    "Back pain: no. Urinary retention: yes",
    "Fear of urinary incontinence", "Risk of urinary incontinence",
    "At risk of cauda equina syndrome",
])
def test_a_text_that_may_name_the_patients_sign_stays_a_red_flag(text):
    """Never dropped: a past or resolved sign in a recent record, one beside a no, or a feared
    or suspected one may be this episode's (the card shows the text, marked uncoded)."""
    assert CES in fired(run(obs({"text": text}, value=None, when=ago(days=1))))


def test_a_locally_coded_record_whose_text_names_ces_is_uncoded_too():
    local = cond({"coding": [{"system": "urn:oid:1.2.3.4.5", "code": "X1"}],
                  "text": "suspected cauda equina syndrome"})
    assert CES in fired(run(local))


# --- where the finding is recorded -------------------------------------------------------------

def _bladder_screen(value):
    return obs({"text": "Bladder screen"}, value=None,
               component=[{"code": concept(SCT, RETENTION), "valueCodeableConcept": value}])


def test_a_finding_recorded_as_a_component_counts():
    assert CES in fired(run(_bladder_screen(PRESENT)))
    assert CES not in fired(run(_bladder_screen(ABSENT)))


def _panel(value):
    member = obs(RETENTION, rid="m1", value=value, subject=None)
    return obs({"text": "Neuro panel"}, value=None, contained=[member],
               hasMember=[{"reference": "#m1"}])


def test_a_contained_panel_member_counts():
    assert CES in fired(run(_panel(PRESENT)))
    assert CES not in fired(run(_panel(ABSENT)))


def test_a_flowsheet_row_whose_value_is_the_finding_counts():
    row = obs(concept(LOCAL + "-flowsheet", "bladder"), value=concept(SCT, RETENTION))
    other = obs(concept(LOCAL + "-flowsheet", "bladder"), value=concept(SCT, "22253000"))
    assert CES in fired(run(row))
    assert CES not in fired(run(other))


def _with_contained_evidence(value):
    found = obs(RETENTION, rid="ev1", value=value, subject=None)
    return cond({"text": "Back problem"}, contained=[found],
                evidence=[{"detail": [{"reference": "#ev1"}]}])


def test_a_contained_resource_in_condition_evidence_counts():
    assert CES in fired(run(_with_contained_evidence(PRESENT)))
    assert CES not in fired(run(_with_contained_evidence(ABSENT)))


@pytest.mark.parametrize("verification", ["entered-in-error", "refuted"])
def test_what_a_withdrawn_condition_contains_is_withdrawn_with_it(verification):
    """§2.0: an entered-in-error or refuted Condition is ignored, its contained evidence too."""
    withdrawn = _with_contained_evidence(PRESENT)
    withdrawn["verificationStatus"] = concept(
        "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification)
    assert CES not in fired(run(withdrawn))
    assert CES in fired(run(_with_contained_evidence(PRESENT)))  # confirmed: it counts


def test_a_withdrawn_panels_members_are_withdrawn_with_it():
    panel = _panel(PRESENT)
    panel["status"] = "entered-in-error"
    assert CES not in fired(run(panel))


@pytest.mark.parametrize("holder", [_panel, _with_contained_evidence], ids=["panel", "evidence"])
def test_a_contained_record_of_another_patient_never_counts_and_is_reported(holder):
    """§2.0.1: another patient's record never counts, wherever it is written."""
    theirs = holder(PRESENT)
    theirs["contained"][0]["subject"] = {"reference": "Patient/someone-else"}
    ev = run(theirs)
    assert CES not in fired(ev)
    assert ev.data_quality["excluded"].get("other-patient") == 1
    mine = holder(PRESENT)
    mine["contained"][0]["subject"] = {"reference": f"Patient/{PID}"}
    assert CES in fired(run(mine))


def _temperature(celsius, unit="Cel"):
    return obs(concept(LOINC, "8310-5"), when=ago(days=3), value={"valueQuantity": {
        "value": celsius, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})


def test_measured_temperature_of_38_or_more_is_fever():
    assert R3 in fired(run(back_pain(), _temperature(38.0)))
    assert R3 in fired(run(back_pain(), _temperature(38.6)))
    assert R3 in fired(run(back_pain(), _temperature(101.0, "[degF]")))
    assert R3 not in fired(run(back_pain(), _temperature(37.9)))
    assert R3 not in fired(run(back_pain(), _temperature(99.0, "[degF]")))


def _grade(text):
    weak = obs("713514005", when=ago(days=2))
    grade = obs(concept(LOCAL, "motor-strength-grade"), when=ago(days=2), value=text)
    return weak, grade


def test_motor_grade_written_3_of_5_is_grade_3():
    assert R2 in fired(run(*_grade("3/5")))
    assert R2 not in fired(run(*_grade("4/5")))


# --- absent and present in every usual shape ---------------------------------------------------

V2 = "http://terminology.hl7.org/CodeSystem/v2-0136"
INTERP_NEW = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERP_OLD = "http://hl7.org/fhir/v3/ObservationInterpretation"


def _interp(system, code):
    return {"value": None, "interpretation": [concept(system, code)]}


ABSENT_SHAPES = {
    "snomed-no": {"value": concept(SCT, "373067005")},
    "v2-N": {"value": concept(V2, "N")},
    "string-no": {"value": "No"},
    "string-absent": {"value": "absent"},
    "string-negative": {"value": "Negative"},
    "string-denies": {"value": "denies"},
    "text-only": {"value": {"text": "absent"}},
    "neg-new": _interp(INTERP_NEW, "NEG"),
    "neg-old": _interp(INTERP_OLD, "NEG"),
    "false": {"value": False},
    "absent-2667000": {"value": ABSENT},
}
PRESENT_SHAPES = {
    "snomed-yes": {"value": concept(SCT, "373066001")},
    "v2-Y": {"value": concept(V2, "Y")},
    "string-yes": {"value": "Yes"},
    "string-present": {"value": "present"},
    "string-positive": {"value": "POSITIVE"},
    "pos-new": _interp(INTERP_NEW, "POS"),
    "pos-old": _interp(INTERP_OLD, "POS"),
    "true": {"value": True},
    "no-value": {"value": None},
}


@pytest.mark.parametrize("shape", ABSENT_SHAPES, ids=str)
def test_an_absent_retention_never_gives_the_ces_card(shape):
    assert CES not in fired(run(obs(RETENTION, **ABSENT_SHAPES[shape])))


@pytest.mark.parametrize("shape", PRESENT_SHAPES, ids=str)
def test_a_present_retention_gives_the_ces_card(shape):
    assert CES in fired(run(obs(RETENTION, **PRESENT_SHAPES[shape])))


def test_an_absent_red_flag_does_not_block_the_early_imaging_guard():
    ev = run(back_pain(), obs(RETENTION, value="No"), hook="order-select", drafts=mri_draft())
    assert R4 in fired(ev) and ev.pama.get("ServiceRequest/mri") == "not-appropriate"


# --- laterality --------------------------------------------------------------------------------

LEFT = {"system": SCT, "code": "7771000"}
RIGHT = {"system": SCT, "code": "24028007"}


def _numb(*sides):
    return obs(NUMB_LEG, when=ago(days=2), bodySite={"coding": list(sides)})


def _progressing():
    return obs(concept(LOCAL, "neuro-deficit-progressing"), when=ago(hours=1), value=True)


def test_bilateral_is_two_records_one_per_side():
    assert CES in fired(run(_numb(LEFT), _numb(RIGHT), _progressing()))
    assert CES not in fired(run(_numb(LEFT), _numb(LEFT), _progressing()))


def test_conflicting_laterality_in_one_record_is_an_unknown_side_not_both():
    conflicting = cond(concept(ICD, "M54.41"), onset=ago(days=30),
                       bodySite=[{"coding": [LEFT]}])
    ev = run(conflicting)
    facts = {f["ref"]: f for f in ev.trace["facts"]}
    assert "laterality" not in facts[f"Condition/{conflicting['id']}"]
    consistent = cond(concept(ICD, "M54.41"), onset=ago(days=30), bodySite=[{"coding": [RIGHT]}])
    assert run(consistent).trace["facts"][-1]["laterality"] == "right"


# --- windows, imaging, references --------------------------------------------------------------

def test_a_resolved_fever_that_began_in_the_window_still_counts():
    resolved = cond(FEVER, clinical="resolved", onset=ago(days=5), abatementDateTime=ago(days=2))
    old = cond(FEVER, clinical="resolved", onset=ago(days=40), abatementDateTime=ago(days=35))
    assert R3 in fired(run(back_pain(), resolved))
    assert R3 not in fired(run(back_pain(), old))


def _lumbar_mri_report(status):
    return {"resourceType": "DiagnosticReport", "id": f"mri-{status}", "status": status,
            "subject": {"reference": f"Patient/{PID}"}, "effectiveDateTime": ago(days=60),
            "code": concept(LOINC, "30679-5")}


def _spine_pattern():
    return [cond(concept(ICD, "M54.41"), onset=ago(days=60)),
            obs(concept(LOCAL, "pain-radiates-below-knee"), when=ago(days=10), value=True),
            obs(NUMB_LEG, when=ago(days=10)),
            obs(concept(LOCAL, "worse-with-bending"), when=ago(days=10), value=True)]


@pytest.mark.parametrize("status", ["preliminary", "final", "amended", "corrected", "PARTIAL"])
def test_imaging_counts_as_done_whatever_its_report_status(status):
    assert "spine-pattern-mri" in fired(run(*_spine_pattern()))
    assert "spine-pattern-mri" not in fired(run(*_spine_pattern(), _lumbar_mri_report(status)))


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_cancelled_imaging_is_not_done(status):
    assert "spine-pattern-mri" in fired(run(*_spine_pattern(), _lumbar_mri_report(status)))


@pytest.mark.parametrize("subject", [
    f"Patient/{PID}", f"https://ehr.example.org/fhir/Patient/{PID}",
    f"https://ehr.example.org/fhir/Patient/{PID}/_history/3",
])
def test_a_record_of_the_context_patient_counts_however_referenced(subject):
    assert CES in fired(run(obs(RETENTION, subject=subject)))


@pytest.mark.parametrize("subject", [
    "Patient/other", f"Patient/{PID}0", f"https://ehr.example.org/fhir/Patient/x{PID}",
    f"Group/{PID}", None,
])
def test_another_patients_record_never_counts(subject):
    ev = run(obs(RETENTION, rid="foreign", subject=subject))
    assert not ev.active
    assert "foreign" not in str(ev.trace["facts"])
    assert sum(ev.data_quality["excluded"].values()) == 1


def test_a_patient_resource_of_another_patient_is_excluded():
    ev = run(patient("someone-else"), obs(RETENTION), with_patient=False)
    assert ev.data_quality["excluded"] == {"other-patient": 1}
    assert CES in fired(ev)


def test_exclusions_and_uncertain_records_are_counted_by_reason():
    ev = run(obs(RETENTION, when=None), obs(RETENTION, status=None),
             obs(RETENTION, subject="Patient/other"), cond({"text": "cauda equina"}))
    assert ev.data_quality["excluded"] == {"other-patient": 1}
    assert ev.data_quality["uncertain"] == {"date": 1, "status": 1, "uncoded": 1}
    clean = run(obs(RETENTION))
    assert clean.data_quality == {"excluded": {}, "uncertain": {}}


def _pain(rid, score, when, part_of):
    return obs(concept(LOINC, "72514-3"), rid=rid, when=when, partOf=[{"reference": part_of}],
               value={"valueInteger": score})


def _injection(part_of_pre, part_of_post):
    hip_right = {"coding": [{"system": SCT, "code": "29836001"}, RIGHT]}
    return [cond(concept(ICD, "M48.062"), onset=ago(days=200)),
            cond(concept(ICD, "M16.11"), onset=ago(days=200), bodySite=[hip_right]),
            {"resourceType": "Procedure", "id": "7", "status": "completed",
             "subject": {"reference": f"Patient/{PID}"}, "performedDateTime": ago(hours=3),
             "code": concept("http://www.ama-assn.org/go/cpt", "20611"), "bodySite": [hip_right]},
            _pain("pre", 8, ago(hours=3, minutes=30), part_of_pre),
            _pain("post", 2, ago(hours=2), part_of_post)]


@pytest.mark.parametrize("ref", ["Procedure/7", "https://ehr.example.org/fhir/Procedure/7"])
def test_part_of_references_match_relative_or_absolute(ref):
    assert "injection-confirms-hip" in fired(run(*_injection(ref, ref)))


def test_part_of_another_procedure_does_not_match():
    assert "injection-confirms-hip" not in fired(run(*_injection("Procedure/8", "Procedure/8")))


# --- impossible durations, deceased, order time ------------------------------------------------

def test_a_future_onset_is_an_unknown_duration():
    future = cond("279039007", rid="future", onset=ahead(days=20))
    ev = run(future, hook="order-select", drafts=mri_draft())
    assert R4 not in fired(ev) and GAP in fired(ev)
    assert "-20" not in str(ev.trace["derived"])
    assert R4 in fired(run(back_pain(20), hook="order-select", drafts=mri_draft()))


@pytest.mark.parametrize("deceased", [{"deceasedBoolean": True},
                                      {"deceasedDateTime": "2026-02-20"}])
def test_a_deceased_patient_gets_no_cards(deceased):
    ev = run(patient(**deceased), obs(RETENTION), with_patient=False)
    assert not ev.decisions
    alive = run(patient(deceasedBoolean=False), obs(RETENTION), with_patient=False)
    assert CES in fired(alive)


def _r4_actions(ev):
    body = card(ev, R4) if R4 in fired(ev) else {"suggestions": []}
    return [a["type"] for s in body.get("suggestions", []) for a in s["actions"]]


def test_r4_without_red_flags_still_advises_removing_the_draft():
    ev = run(back_pain(), hook="order-select", drafts=mri_draft())
    assert "delete" in _r4_actions(ev)
    assert ev.pama.get("ServiceRequest/mri") == "not-appropriate"


@pytest.mark.parametrize("red_flag", [
    obs(RETENTION, when=None),                     # uncertain date: R1 fires
    obs(RETENTION, status=None),                   # uncertain status
    obs(NUMB_LEG, when=ago(days=3)),               # one deficit finding: R2 does not fire
    obs(FEVER, when="2026"),                       # partial date inside the window
    cond({"text": "cauda equina syndrome"}),       # uncoded
])
def test_r4_never_deletes_or_rates_not_appropriate_while_red_flag_evidence_exists(red_flag):
    ev = run(back_pain(), red_flag, hook="order-select", drafts=mri_draft())
    assert "delete" not in _r4_actions(ev)
    assert ev.pama.get("ServiceRequest/mri") != "not-appropriate"


def test_the_evidence_date_of_an_unreadable_record_is_not_invented():
    ev = run(obs(RETENTION, rid="bad", when="yesterday"))
    line = next(t for t in card(ev, CES)["detail"].splitlines() if "Observation/bad" in t)
    assert str(NOW.year) not in line and "date unreadable" in line


# --- saddle sensory loss (reference 2.1 VS-CES: numbness or hypoesthesia with a perineal or
# groin bodySite) -------------------------------------------------------------------------------

GROIN = {"system": SCT, "code": "26893007"}
PERINEUM = {"system": LOCAL, "code": "perineal-region"}
THIGH = {"system": SCT, "code": "68367000"}  # Thigh structure: not the saddle area


@pytest.mark.parametrize("site", [GROIN, PERINEUM], ids=["groin", "perineum"])
@pytest.mark.parametrize("numb", ["44077006", "397974008"], ids=["numbness", "hypoesthesia"])
def test_numbness_of_the_groin_or_perineum_fires_r1(site, numb):
    ev = run(obs(numb, when=ago(days=1), bodySite={"coding": [site]}))
    assert CES in fired(ev)


@pytest.mark.parametrize("numb", ["44077006", "397974008"], ids=["numbness", "hypoesthesia"])
def test_numbness_of_the_thigh_is_no_saddle_sign(numb):
    assert CES not in fired(run(obs(numb, when=ago(days=1), bodySite={"coding": [THIGH]})))
