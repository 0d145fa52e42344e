"""The impact report for people (aligned text tables) and for machines (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.impact.compare import PAMA_ROW, Impact


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]


def _card(side: dict[str, Any] | None) -> str:
    return " ".join((side["indicator"], *side["codes"])) if side else "-"


def change_rows(impact: Impact) -> list[tuple[str, str, str, str, str, str]]:
    """(patient, hook call, rule, change, before, after): the rows the CLI and the page show."""
    rows = []
    for patient in impact.changes:
        for card in patient["cards"]:
            rows.append((patient["patient"], card["call"], card["rule"], card["change"],
                         _card(card["before"]), _card(card["after"])))
        for draft in patient["pama"]:
            rows.append((patient["patient"], f"{draft['call']} {draft['draft']}", PAMA_ROW,
                         "changed", draft["before"] or "-", draft["after"] or "-"))
    return rows


def total_rows(impact: Impact) -> list[tuple[Any, ...]]:
    return [(rule, t.before, t.after, t.appeared, t.disappeared, t.changed, t.patients)
            for rule, t in sorted(impact.totals.items())]


CHANGE_HEADERS = ("PATIENT", "HOOK CALL", "RULE", "CHANGE", "BEFORE", "AFTER")
TOTAL_HEADERS = ("RULE", "CARDS BEFORE", "CARDS AFTER", "APPEARED", "DISAPPEARED", "CHANGED",
                 "PATIENTS")


def render_text(impact: Impact, header: dict[str, str]) -> str:
    out = [f"{key}: {value}" for key, value in header.items()]
    out.append(f"{impact.patients} patients, {impact.calls} hook calls; "
               f"{len(impact.changes)} patients' cards change.")
    if impact.changes:
        out += ["", "CHANGES", *table(CHANGE_HEADERS, change_rows(impact))]
    if impact.totals:
        out += ["", "TOTALS PER RULE", *table(TOTAL_HEADERS, total_rows(impact))]
    if impact.errors:
        out += ["", f"ERRORS ({len(impact.errors)} patients could not be evaluated)",
                *table(("PATIENT", "HOOK CALL", "ERROR"),
                       [(e["patient"], e["call"], e["error"]) for e in impact.errors])]
    return "\n".join(out)


def render_json(impact: Impact, header: dict[str, str]) -> dict[str, Any]:
    return {**header, **impact.as_dict()}
