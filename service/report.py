"""``spinehip report``: how each rule fares with clinicians, from the audit trail and feedback.

Per rule: cards returned, shadow decisions (what a rule in shadow mode would have shown),
accepted and overridden cards, acceptance rate among cards with feedback, the commonest override
reasons, and the median and 95th percentile evaluation time of the calls the rule fired in.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from service.config import Settings
from service.engine.dates import parse_instant
from service.store import DecisionActivity, FeedbackActivity, Store

TOP_REASONS = 3
COLUMNS = (
    "rule",
    "fired",
    "shadow",
    "accepted",
    "overridden",
    "acceptance",
    "top override reasons",
    "p50 ms",
    "p95 ms",
)


@dataclass(frozen=True)
class RuleSummary:
    rule_id: str
    fired: int
    shadow: int
    accepted: int
    overridden: int
    top_override_reasons: tuple[tuple[str, int], ...]
    p50_ms: float | None
    p95_ms: float | None

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted share of the cards clinicians answered; None when nobody answered yet."""
        answered = self.accepted + self.overridden
        return self.accepted / answered if answered else None

    def cells(self) -> list[str]:
        rate = self.acceptance_rate
        return [
            self.rule_id,
            str(self.fired),
            str(self.shadow),
            str(self.accepted),
            str(self.overridden),
            "" if rate is None else f"{rate:.0%}",
            "; ".join(f"{reason} ({count})" for reason, count in self.top_override_reasons),
            _ms(self.p50_ms),
            _ms(self.p95_ms),
        ]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile: always a value that was measured, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latest_outcomes(feedback: Iterable[FeedbackActivity]) -> dict[str, FeedbackActivity]:
    """A clinician may answer a card more than once; the last answer is the one that counts."""
    latest: dict[str, FeedbackActivity] = {}
    for item in feedback:
        known = latest.get(item.card_uuid)
        if known is None or item.outcome_at >= known.outcome_at:
            latest[item.card_uuid] = item
    return latest


def summarise(
    decisions: Iterable[DecisionActivity], feedback: Iterable[FeedbackActivity]
) -> list[RuleSummary]:
    fired: Counter[str] = Counter()
    shadow: Counter[str] = Counter()
    timings: dict[str, list[float]] = defaultdict(list)
    for decision in decisions:
        (fired if decision.mode == "active" else shadow)[decision.rule_id] += 1
        timings[decision.rule_id].append(decision.evaluation_ms)
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for answer in latest_outcomes(feedback).values():
        outcomes[answer.rule_id][answer.outcome] += 1
        if answer.outcome == "overridden":
            reasons[answer.rule_id][answer.reason_code or "(no reason)"] += 1
    summaries = [
        RuleSummary(
            rule_id=rule,
            fired=fired[rule],
            shadow=shadow[rule],
            accepted=outcomes[rule]["accepted"],
            overridden=outcomes[rule]["overridden"],
            top_override_reasons=tuple(reasons[rule].most_common(TOP_REASONS)),
            p50_ms=percentile(timings[rule], 0.50),
            p95_ms=percentile(timings[rule], 0.95),
        )
        for rule in timings
    ]
    return sorted(summaries, key=lambda s: (-s.fired, -s.shadow, s.rule_id))


def format_table(summaries: Sequence[RuleSummary]) -> str:
    rows = [list(COLUMNS), *(s.cells() for s in summaries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {1, 2, 3, 4, 5, 7, 8}
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(summaries: Sequence[RuleSummary], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(s.cells() for s in summaries)


def since_argument(raw: str) -> datetime:
    """``2026-11-01`` (midnight UTC) or a full ISO 8601 time."""
    try:
        return parse_instant(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date like 2026-11-01 or an ISO 8601 time, not {raw!r}"
        ) from None


def _run(args: argparse.Namespace) -> int:
    store = Store.from_settings(Settings.from_env(), bounded=False)
    try:
        if not store.has_schema():
            print(
                "error: the database has no audit tables yet; start the service once, "
                "or check DATABASE_URL",
                file=sys.stderr,
            )
            return 2
        summaries = summarise(
            store.decision_activity(args.since), store.feedback_activity(args.since)
        )
    finally:
        store.close()
    if args.csv:
        write_csv(summaries, sys.stdout)
    elif summaries:
        print(format_table(summaries))
    else:
        print("no decisions recorded" + (f" since {args.since.isoformat()}" if args.since else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="per-rule firing, feedback and timing summary")
    report.add_argument("--since", type=since_argument, help="only calls from this date or time on")
    report.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    report.set_defaults(func=_run)
