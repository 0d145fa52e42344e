"""The benchmark harness runs end to end on tiny sizes and prints every figure with its reference.

No timing is asserted here: speed targets are checked and printed by ``make bench`` itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.measure import Timings
from benchmarks.report import NOTES_MARKER, write_results
from benchmarks.synthetic import LOCAL_CODE_SYSTEM, synthetic_request
from service.config import PROJECT_ROOT

NUMBER = r"\d+(?:\.\d+)?"
P50_P99 = rf"{NUMBER} / {NUMBER}"
RUN_TIMEOUT_S = 240
IN_CI = os.environ.get("CI", "").lower() == "true"


def run_quick(tmp_path: Path, parts: str) -> tuple[str, str]:
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--parts", parts, "--results", str(results)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, results.read_text(encoding="utf-8")


def target_verdict(output: str, name: str) -> str:
    row = next(line for line in output.splitlines() if line.startswith(f"| {name} "))
    return row.rstrip(" |").rsplit("|", 1)[1].strip()


def test_quick_run_prints_in_process_and_http_figures_beside_their_references(tmp_path: Path) -> None:
    output, written = run_quick(tmp_path, "AB")
    for size in (10, 200):
        assert re.search(rf"^\| {size} +\| {NUMBER} KiB +\| \d+ +\| {P50_P99} +\| {P50_P99} +\| {P50_P99} ",
                         output, re.M), f"no in-process row for {size} resources"
    for endpoint in ("spinehip-cds", "Flask floor"):
        assert re.search(rf"^\| {endpoint}[^|]* +\| [1-9]\d* +\| \d+ +\| {NUMBER} +\| {NUMBER} +\| {NUMBER} ",
                         output, re.M), f"no HTTP row for {endpoint}"
    assert re.search(r"Throughput ratio: \d+% of the framework floor", output)
    for target in ("A1", "A2", "B1", "B2"):
        assert target_verdict(output, target) in ("PASS", "FAIL")
    assert target_verdict(output, "C") == "NOT RUN"
    assert "Top service functions by cumulative time" in output
    assert "whole request path in Flask" in output
    assert written.startswith(output.rstrip("\n"))
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in written
    assert re.search(r", \d+ cores, ", written)


@pytest.mark.fhirserver
def test_quick_run_prints_the_fallback_beside_its_slowest_query(tmp_path: Path) -> None:
    output, _ = run_quick(tmp_path, "C")
    if "Part C did not run" in output and not IN_CI:
        pytest.skip(next(line for line in output.splitlines() if line.startswith("Part C did not run")))
    assert re.search(rf"^\| patient-view call, no prefetch \(HTTP\) +\| {NUMBER} +\| {NUMBER} ", output, re.M)
    query = r"Observation\?patient=bench-200(?:&_count=\d+)?"
    patient = synthetic_request(200, datetime.now(UTC))
    held = sum(r["resourceType"] == "Observation" for r in patient.resources)  # all must come back
    observations = rf"^\| query `{query}` +\| {NUMBER} +\| {NUMBER} +\| \d+ +\| {held} "
    assert re.search(observations, output, re.M)
    assert re.search(rf"Slowest single query: `[^`]+` \({NUMBER} ms\)", output)
    assert target_verdict(output, "C") in ("PASS", "FAIL")
    assert target_verdict(output, "A1") == "NOT RUN"


def test_synthetic_request_holds_the_asked_number_of_uniquely_named_resources() -> None:
    request = synthetic_request(50, datetime(2026, 3, 1, tzinfo=UTC))
    ids = [f"{r['resourceType']}/{r['id']}" for r in request.resources]
    assert len(ids) == 50
    assert len(set(ids)) == 50
    local = [r for r in request.resources
             if r.get("code", {}).get("coding", [{}])[0].get("system") == LOCAL_CODE_SYSTEM]
    assert 30 <= len(local) < 49, "most resources but not all should carry codes no value set maps"
    subjects = {r["subject"]["reference"] for r in request.resources if "subject" in r}
    assert subjects == {f"Patient/{request.patient_id}"}


def test_synthetic_request_is_the_same_for_the_same_seed() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert synthetic_request(30, now).body == synthetic_request(30, now).body
    assert synthetic_request(30, now, seed=1).body != synthetic_request(30, now, seed=2).body


def test_percentiles_are_nearest_rank_so_p99_of_few_samples_is_the_slowest() -> None:
    timings = Timings(tuple(n / 1000 for n in range(1, 11)))
    assert timings.p50_ms == pytest.approx(5.0)
    assert timings.p99_ms == pytest.approx(10.0)


def test_rewriting_results_keeps_the_hand_written_notes(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# old figures\n\n{NOTES_MARKER}\n\n## Findings\nwritten by hand\n", encoding="utf-8")
    write_results(path, "# new figures")
    text = path.read_text(encoding="utf-8")
    assert "old figures" not in text
    assert text.startswith("# new figures")
    assert text.endswith(f"{NOTES_MARKER}\n\n## Findings\nwritten by hand\n")
