"""``spinehip rules explain``: what an admin reads to learn why a card did or did not show."""

from __future__ import annotations

import json

import pytest

from service.cli import main
from service.config import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "fixtures"
AT = "2026-06-01T12:00:00Z"


def _explain(capsys, *args: str) -> str:
    assert main(["rules", "explain", *args, "--at", AT]) == 0
    return capsys.readouterr().out


def _rule_block(text: str, rule_id: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {rule_id} "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  ")
                and not lines[i].startswith("    ")), len(lines))
    return lines[start:end]


def test_a_hook_request_with_draft_orders_explains_the_order_guard(capsys):
    out = _explain(capsys, str(FIXTURES / "requests" / "spine-onset-day41-order-select-mri.json"))
    assert "(order-select)" in out.splitlines()[0]
    assert _rule_block(out, "early-lumbar-imaging")[0].endswith(": card")
    mri = _rule_block(out, "spine-pattern-mri")
    assert mri[0].endswith(": did not fire")
    assert "    failed: duration back_pain_duration ≥ 42 days (imaging_wait): " \
           "back_pain_duration is 41 days" in mri


def test_the_same_patient_as_a_bundle_has_no_draft_to_guard(capsys):
    out = _explain(capsys, str(FIXTURES / "patients" / "spine-onset-day41.json"))
    assert _rule_block(out, "early-lumbar-imaging")[0].endswith(": not evaluated for this hook")


def test_every_rule_shows_its_status_and_limits(capsys):
    out = _explain(capsys, str(FIXTURES / "patients" / "s01-sciatica-8-weeks.json"))
    block = _rule_block(out, "spine-pattern-mri")
    assert "status experimental" in block[0]
    assert any("limit: SpineScore and HipScore are heuristic" in line for line in block)
    assert "status test" in _rule_block(out, "cauda-equina")[0]


def test_a_failed_clause_names_the_missing_finding(capsys):
    out = _explain(capsys, str(FIXTURES / "patients" / "s01-sciatica-8-weeks.json"))
    ces = _rule_block(out, "cauda-equina")
    assert ces[0].endswith(": did not fire")
    assert "    failed: none of: no ces_sign; no saddle_anaesthesia; no ces_diagnosis; " \
           "no ces_diagnosis_observed; no neuro_deficit_bilateral" in ces


def test_json_output_carries_the_failed_clause_status_and_limits(capsys):
    out = _explain(capsys, str(FIXTURES / "requests" / "spine-onset-day41-order-select-mri.json"),
                   "--json")
    rules = {r["rule"]: r for r in json.loads(out)["rules"]}
    assert rules["spine-pattern-mri"]["failedClause"].endswith("back_pain_duration is 41 days")
    assert rules["spine-pattern-mri"]["ruleStatus"] == "experimental"
    assert "failedClause" not in rules["early-lumbar-imaging"]
    assert rules["early-lumbar-imaging"]["limits"]


def test_a_file_that_is_neither_a_bundle_nor_a_request_is_a_clear_error(capsys, tmp_path):
    path = tmp_path / "patient.json"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    assert main(["rules", "explain", str(path)]) == 2
    err = capsys.readouterr().err
    assert "expected a Bundle or a CDS Hooks request" in err and "Traceback" not in err


def test_a_missing_file_is_a_clear_error(capsys, tmp_path):
    assert main(["rules", "explain", str(tmp_path / "nothing-here.json")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def _why_not(patient_id: str) -> tuple[set[str], dict[str, str]]:
    from datetime import UTC, datetime

    from service.engine import evaluate
    from service.engine.whynot import failed_clauses
    from service.fixtures import bundle_resources, load_bundle
    from tests.support.rules import bundled_ruleset

    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    ruleset = bundled_ruleset()
    resources = bundle_resources(load_bundle(FIXTURES / "patients" / "s01-sciatica-8-weeks.json", now))
    when = {"now": now, "hook": "patient-view", "patient_id": patient_id}
    return (set(evaluate(ruleset, resources, **when).rule_ids),
            failed_clauses(ruleset, resources, **when))


def test_the_failed_clause_is_read_from_the_context_patients_records_only():
    fired, failed = _why_not("s01-sciatica-8-weeks")
    assert "spine-pattern-mri" in fired and "spine-pattern-mri" not in failed
    # Every record names another patient: nothing fires, and the explanation agrees.
    fired, failed = _why_not("someone-else")
    assert "spine-pattern-mri" not in fired and "spine-pattern-mri" in failed


def test_a_card_shows_the_override_reasons_it_offers_with_the_snooze_in_force(capsys, monkeypatch):
    """The admin reads the texts the clinician will: the snooze reason says the days the
    settings apply (14 here, the default 30 without them)."""
    request = str(FIXTURES / "requests" / "s13-piriformis.json")
    monkeypatch.delenv("SPINEHIP_SNOOZE_REASONS", raising=False)
    default = _rule_block(_explain(capsys, request), "piriformis-pattern")
    monkeypatch.setenv("SPINEHIP_SNOOZE_REASONS", "snooze-30d=14")
    fortnight = _rule_block(_explain(capsys, request), "piriformis-pattern")
    assert default[0].endswith(": card")
    line = "    offers snooze-30d: Addressed already; do not show again for {}"
    assert line.format("30 days") in default and line.format("14 days") in fortnight
    assert "    offers clinical-judgement: Clinical assessment differs from the data" in fortnight


def _request_with_draft_subject(tmp_path, subject: str | None) -> str:
    """The day-41 drafted MRI request, its draft's subject replaced (None: removed)."""
    body = json.loads((FIXTURES / "requests" / "spine-onset-day41-order-select-mri.json").read_text())
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("subject", None)
    if subject is not None:
        draft["subject"] = {"reference": subject}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_explain_guards_the_context_patients_draft_however_its_subject_is_written(capsys, tmp_path):
    for subject in ("Patient/spine-onset-day41", "https://ehr.example.org/fhir/Patient/spine-onset-day41",
                    None):
        out = _explain(capsys, _request_with_draft_subject(tmp_path, subject))
        assert _rule_block(out, "early-lumbar-imaging")[0].endswith(": card"), subject


def test_explain_never_counts_another_patients_draft_as_the_http_answer_does(capsys, tmp_path):
    out = _explain(capsys, _request_with_draft_subject(tmp_path, "Patient/someone-else"))
    assert _rule_block(out, "early-lumbar-imaging")[0].endswith(": did not fire")
    assert "someone-else" not in out


def _request_file(tmp_path, **changes) -> str:
    """The day-41 drafted MRI request with members replaced, ``a__b`` naming ``body[a][b]``;
    a value of ... removes the member."""
    body = json.loads((FIXTURES / "requests" / "spine-onset-day41-order-select-mri.json").read_text())
    for name, value in changes.items():
        *parents, key = name.split("__")
        target = body
        for parent in parents:
            target = target[parent]
        if value is ...:
            target.pop(key, None)
        else:
            target[key] = value
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return str(path)


@pytest.mark.parametrize(("changes", "named"), [
    ({"context__draftOrders": 5}, "context.draftOrders"),
    ({"context__draftOrders": {"resourceType": "Patient"}}, "context.draftOrders"),
    ({"context__draftOrders": {"resourceType": "Bundle", "entry": 7}}, "context.draftOrders.entry"),
    ({"context__selections": "ServiceRequest/x"}, "context.selections"),
    ({"context": "x"}, "context"),
    ({"prefetch": [1]}, "prefetch"),
    ({"prefetch__conditions": 12}, "prefetch.conditions"),
    ({"hook": "nonsense-hook"}, "nonsense-hook"),
])
def test_a_malformed_request_is_an_error_naming_the_member(capsys, tmp_path, changes, named):
    path = _request_file(tmp_path, **changes)
    assert main(["rules", "explain", path, "--at", AT]) == 2
    captured = capsys.readouterr()
    assert named in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_an_unknown_hook_names_the_hooks_there_are(capsys, tmp_path):
    assert main(["rules", "explain", _request_file(tmp_path), "--hook", "patient-veiw", "--at", AT]) == 2
    err = capsys.readouterr().err
    assert "patient-veiw" in err and "order-select" in err and "patient-view" in err


@pytest.mark.parametrize(("changes", "outcome"), [
    ({"prefetch__conditions": None}, "card"),  # a prefetch the EHR could not fill: no data, no error
    ({"context__selections": ...}, "card"),  # nothing selected: the guard still reads the drafts
    ({"prefetch": ...}, "age unknown: red-flag rules only"),  # no data, so no Patient
])
def test_the_well_formed_neighbours_are_explained(capsys, tmp_path, changes, outcome):
    out = _explain(capsys, _request_file(tmp_path, **changes))
    assert "(order-select)" in out.splitlines()[0]
    assert _rule_block(out, "early-lumbar-imaging")[0].endswith(f": {outcome}")


@pytest.mark.parametrize("at", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z",
                                "3000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_an_evaluation_time_past_the_calendar_it_needs_is_an_error_naming_the_option(capsys, at):
    """Evaluation works in windows around the time (ages of 130 years, a day ahead)."""
    request = str(FIXTURES / "requests" / "s08-ces-with-hip-oa.json")
    assert main(["rules", "explain", request, "--at", at]) == 2
    err = capsys.readouterr().err
    assert "--at" in err and "Traceback" not in err


@pytest.mark.parametrize("at", ["1900-01-01T00:00:00Z", "2999-12-31T00:00:00Z", AT])
def test_an_evaluation_time_within_the_years_it_allows_is_explained(capsys, at):
    request = str(FIXTURES / "requests" / "s08-ces-with-hip-oa.json")
    assert main(["rules", "explain", request, "--at", at]) == 0
    assert _rule_block(capsys.readouterr().out, "cauda-equina")[0].endswith(": card")
