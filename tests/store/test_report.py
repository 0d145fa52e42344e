"""``spinehip report`` on a database filled through the store, as the service fills it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from service.cli import main
from service.report import percentile, since_argument
from service.store import DecisionRecord, Store
from tests.support.store_records import OFFERED_REASONS, SUGGESTION, feedback_item, invocation, send

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def fill(store: Store) -> None:
    """Three calls a day apart: CES card each time, one shadow MRI decision each time."""
    for n, ms in enumerate((30.0, 10.0, 20.0)):
        card = f"card-{n}"
        store.record_invocation(
            invocation(
                f"patient-{n}",
                at=DAY + timedelta(days=n),
                evaluation_ms=ms,
                decisions=(
                    DecisionRecord(
                        "cauda-equina", "critical", card_uuid=card,
                        suggestion_uuids=(SUGGESTION,), override_reasons=OFFERED_REASONS,
                    ),
                    DecisionRecord("spine-pattern-mri", "info", mode="shadow"),
                ),
            )
        )
    receipt = send(
        store,
        feedback_item("accepted", card="card-0"),
        feedback_item("snoozed", card="card-1"),
        # card-2 was first overridden, then accepted: the later answer counts.
        feedback_item("disagreed", card="card-2", outcomeTimestamp="2026-11-22T09:00:00Z"),
        feedback_item("accepted", card="card-2", outcomeTimestamp="2026-11-22T09:05:00Z"),
    )
    assert receipt.stored == 4, receipt


def run_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", url)
    code = main(["report", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_csv_report_counts_firing_feedback_and_timing_per_rule(
    store: Store, database_url: str, capsys, monkeypatch
) -> None:
    fill(store)
    code, out, _ = run_report(capsys, monkeypatch, database_url, "--csv")
    rows = {row["rule"]: row for row in csv.DictReader(io.StringIO(out))}
    assert code == 0
    assert rows["cauda-equina"] == {
        "rule": "cauda-equina",
        "fired": "3",
        "shadow": "0",
        "accepted": "2",
        "overridden": "1",
        "acceptance": "67%",
        "top override reasons": "snooze-30d (1)",
        "p50 ms": "20.0",
        "p95 ms": "30.0",
    }
    assert (rows["spine-pattern-mri"]["fired"], rows["spine-pattern-mri"]["shadow"]) == ("0", "3")
    assert rows["spine-pattern-mri"]["acceptance"] == ""


def test_since_leaves_out_earlier_calls(store: Store, database_url: str, capsys, monkeypatch):
    fill(store)
    _, out, _ = run_report(capsys, monkeypatch, database_url, "--csv", "--since", "2026-11-21")
    rows = {row["rule"]: row for row in csv.DictReader(io.StringIO(out))}
    assert (rows["cauda-equina"]["fired"], rows["cauda-equina"]["accepted"]) == ("2", "1")


def test_text_report_is_a_table_with_a_shadow_column(
    store: Store, database_url: str, capsys, monkeypatch
) -> None:
    fill(store)
    code, out, _ = run_report(capsys, monkeypatch, database_url)
    header, rule_line, *rest = out.splitlines()
    assert code == 0
    assert header.split()[:3] == ["rule", "fired", "shadow"]
    assert set(rule_line) == {"-", " "}
    assert rest[0].split()[:6] == ["cauda-equina", "3", "0", "2", "1", "67%"]
    assert rest[1].split()[:3] == ["spine-pattern-mri", "0", "3"]


def test_empty_database_says_nothing_was_recorded(store, database_url, capsys, monkeypatch):
    code, out, _ = run_report(capsys, monkeypatch, database_url)
    assert (code, out.strip()) == (0, "no decisions recorded")


def test_database_without_tables_is_a_clear_error(tmp_path, capsys, monkeypatch) -> None:
    code, _, err = run_report(capsys, monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 2
    assert "no audit tables" in err


@pytest.mark.parametrize("raw", ["2026-11-01", "2026-11-01T00:00:00Z", "2026-11-01T02:00:00+02:00",
                                 " 2026-11-01T00:00 "])
def test_since_is_read_as_every_other_instant_naive_meaning_utc(raw) -> None:
    assert since_argument(raw) == datetime(2026, 11, 1, tzinfo=UTC)


def test_bad_since_is_a_usage_error(capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--since", "last tuesday"])
    assert exit_info.value.code == 2
    assert "expected a date" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([], 0.5, None), ([7.0], 0.95, 7.0), ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0), ([*range(1, 21)], 0.95, 19)],
)
def test_percentile_is_nearest_rank(values, fraction, expected) -> None:
    assert percentile(values, fraction) == expected
