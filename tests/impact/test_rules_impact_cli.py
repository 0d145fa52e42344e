"""``spinehip rules impact`` run as a real process: the admin's question answered exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from service.config import PROJECT_ROOT
from tests.impact.windows import (
    AT,
    FEW,
    RULES,
    SIX_WEEKS,
    copy_with_window,
    few_bundles,
    patients_between,
)


def impact(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "rules", "impact", "--at", AT, *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, **(env or {})},
    )


def changed_patients(done: subprocess.CompletedProcess[str]) -> set[str]:
    return {c["patient"] for c in json.loads(done.stdout)["changes"]}


def test_the_independently_derived_patients_are_between_the_windows() -> None:
    # The derivation itself must name someone, or the tests below would prove nothing.
    assert patients_between(SIX_WEEKS, 49)
    assert patients_between(35, SIX_WEEKS)


@pytest.mark.parametrize("days", [49, 35])
def test_moving_the_six_week_window_names_exactly_the_patients_in_between(tmp_path, days) -> None:
    copy = copy_with_window(tmp_path, days)
    expected = patients_between(min(days, SIX_WEEKS), max(days, SIX_WEEKS))
    done = impact("--against", str(RULES), "--rules", str(copy), "--json")
    assert done.returncode == 1, done.stderr
    assert changed_patients(done) == expected
    report = json.loads(done.stdout)
    assert report["patients"] == len(list((PROJECT_ROOT / "fixtures" / "patients").glob("*.json")))
    # Lengthening the window takes R5 from patients it now finds too early and gives R4 to
    # their lumbar imaging drafts; shortening does the reverse.
    kinds = {(c["rule"], c["change"]) for p in report["changes"] for c in p["cards"]}
    if days > SIX_WEEKS:
        assert ("spine-pattern-mri", "disappeared") in kinds
        assert ("early-lumbar-imaging", "appeared") in kinds
    else:
        assert ("spine-pattern-mri", "appeared") in kinds
        assert ("early-lumbar-imaging", "disappeared") in kinds
    totals = report["totals"]
    assert totals["spine-pattern-mri"]["patients"] >= 1
    assert totals["cauda-equina"]["before"] == totals["cauda-equina"]["after"] > 0


def test_the_text_table_names_the_same_patients_and_the_progress_bar_goes_to_stderr(
        tmp_path) -> None:
    copy = copy_with_window(tmp_path, 49)
    done = impact("--against", str(RULES), "--rules", str(copy), "--progress")
    assert done.returncode == 1, done.stderr
    changes = done.stdout.split("CHANGES", 1)[1].split("TOTALS PER RULE", 1)[0]
    named = {line.split()[0] for line in changes.strip().splitlines()[2:]}
    assert named == patients_between(SIX_WEEKS, 49)
    assert "spine-pattern-mri" in done.stdout.split("TOTALS PER RULE", 1)[1]
    count = len(list((PROJECT_ROOT / "fixtures" / "patients").glob("*.json")))
    assert f"{count}/{count} patients" in done.stderr and "[#" not in done.stdout


def test_an_unchanged_copy_changes_nothing_and_exits_0(tmp_path) -> None:
    copy = tmp_path / "same"
    shutil.copytree(RULES, copy)
    done = impact("--against", str(RULES), "--rules", str(copy), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["changes"] == [] and report["changedPatients"] == 0
    assert report["calls"] > report["patients"] > 0  # it did evaluate everyone, every hook
    assert all(t["before"] == t["after"] for t in report["totals"].values())
    assert sum(t["before"] for t in report["totals"].values()) > 0


def test_a_broken_rule_set_exits_2_with_file_and_line(tmp_path) -> None:
    copy = copy_with_window(tmp_path, 49)
    broken = copy / "rules" / "r05-spine-pattern-mri.yaml"
    broken.write_text(broken.read_text().replace("indicator: info", "indicator: loud"))
    done = impact("--against", str(RULES), "--rules", str(copy))
    assert done.returncode == 2
    assert "r05-spine-pattern-mri.yaml:" in done.stderr and "indicator" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_missing_source_exits_2_naming_it(tmp_path) -> None:
    done = impact("--against", str(RULES), "--patients", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "nowhere" in done.stderr and "Traceback" not in done.stderr


def test_a_directory_of_bundles_gives_the_same_patients(tmp_path) -> None:
    copy = copy_with_window(tmp_path, 49)
    bundles = few_bundles(tmp_path / "bundles")
    done = impact("--against", str(RULES), "--rules", str(copy), "--patients", str(bundles),
                  "--json")
    assert done.returncode == 1, done.stderr
    assert changed_patients(done) == patients_between(SIX_WEEKS, 49) & set(FEW)
    report = json.loads(done.stdout)
    assert "FHIR Bundles" in report["patients from"] and report["patients"] == len(FEW)
