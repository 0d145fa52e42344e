"""Part D's pieces on a small population: the synthetic export, one engine run, the report.

The 100 000-patient figures come from ``make bench``; here only that the harness measures what
it says, with every patient accounted for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from benchmarks.replay import ReplayResult, render_replay, run_engine, write_population
from service.impact.ndjson import NdjsonIndex
from tests.impact.windows import FIXTURES, SIX_WEEKS, copy_with_window, patients_between

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


def test_a_small_population_is_replayed_and_reported(tmp_path) -> None:
    export = tmp_path / "export"
    resources = write_population(export, 50, NOW)
    index = NdjsonIndex(export, tmp_path / "index.sqlite3")
    try:
        assert index.patient_count == 50 and index.unlinked == 0
        assert sum(len(r) for _, r in index.patients()) == resources
    finally:
        index.close()
    run = run_engine("local", export, copy_with_window(tmp_path, 49), NOW, workers=2)
    assert run.patients == 50
    # Patient n clones the n-th demo patient (file order); clones of those the window moves change.
    files = sorted((FIXTURES / "patients").glob("*.json"))
    moved = [i for i, f in enumerate(files) if f.stem in patients_between(SIX_WEEKS, 49)]
    assert moved and run.changed == sum(1 for n in range(50) if n % len(files) in moved)
    assert run.peak_rss_mib > 50 and run.seconds > 0
    text = render_replay(ReplayResult(50, resources, 0.1, 0.1, [run, run]))
    assert "| local | 2 | 50 |" in text and "Both engines gave the same totals." in text
    assert json.dumps(run.totals)
