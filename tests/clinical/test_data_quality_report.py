"""What the EHR sent that could not be used as sent is visible: `spinehip evaluate` prints it.

Reference §2.0.1 "every exclusion is visible": per reason, records excluded (another patient's,
no patient reference, wrong type, unreadable) and records counted although uncertain.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.config import PROJECT_ROOT

REQUESTS = PROJECT_ROOT / "fixtures" / "requests"
AT = "2026-07-15T09:30:00Z"


def _evaluate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(["evaluate", str(path), "--at", AT]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_evaluate_prints_uncertain_records_by_reason(capsys):
    body, err = _evaluate(REQUESTS / "messy-retention-undated.json", capsys)
    assert [c["source"]["topic"]["code"] for c in body["cards"]] == ["cauda-equina"]
    assert "records uncertain: date 1" in err
    assert body["extension"]["org.spinehip-cds"]["dataQuality"]["uncertain"] == {"date": 1}


def test_evaluate_prints_excluded_records_by_reason(tmp_path, capsys):
    request = json.loads((REQUESTS / "messy-retention-undated.json").read_text())
    observations = request["prefetch"]["observations"]["entry"]
    foreign = json.loads(json.dumps(observations[0]))
    foreign["resource"]["id"] = "someone-elses-retention"
    foreign["resource"]["subject"] = {"reference": "Patient/someone-else"}
    observations.append(foreign)
    request["prefetch"]["conditions"]["entry"] = [json.loads(json.dumps(observations[0]))]
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    body, err = _evaluate(path, capsys)
    assert "records excluded: other-patient 1, wrong-resource-type 1" in err
    assert "someone-else" not in json.dumps(body["cards"])


def test_a_clean_record_prints_nothing_about_data_quality(capsys):
    body, err = _evaluate(REQUESTS / "messy-retention-date-only-14d.json", capsys)
    assert [c["source"]["topic"]["code"] for c in body["cards"]] == ["cauda-equina"]
    assert "records" not in err
