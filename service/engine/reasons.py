"""Override reasons: the texts a card offers, a snooze reason's stating the snooze in force.

How long a snooze reason silences a rule is the service's setting (``SPINEHIP_SNOOZE_REASONS``),
not the rule files'. So that the card never states another length than the one applied, a snooze
reason's text writes ``{days}`` where it says how long ("do not show again for {days}" reads
"... for 14 days"), filled in when the rules are loaded with the settings. A text and settings
that cannot agree are errors at the reason's line: ``{days}`` on a reason that does not snooze,
a snooze reason whose text does not state ``{days}``, and a snooze reason no file declares
(no card could offer it, so the setting could never act: most likely a misspelt code).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from service.engine.parameters import Parameter, parameter
from service.engine.rulefiles import RuleFiles
from service.yamlsource import ConfigError

DAYS = "days"
SETTING = "SPINEHIP_SNOOZE_REASONS"


def _length(days: int) -> Parameter:
    """The snooze as a duration parameter: formats as "14 days", "1 day", ``:adj`` "14-day"."""
    return parameter(DAYS, "snooze length", f"{days}d")


def _problem(code: str, fields: set[str], days: int | None) -> tuple[str, str] | None:
    """(message, hint) when a reason's placeholders and its snooze setting disagree."""
    if fields - {DAYS}:
        unknown = ", ".join(f"`{{{f}}}`" for f in sorted(fields - {DAYS}))
        return (f"unknown placeholder {unknown} in override reason `{code}`",
                "a reason's text may state `{days}`, the snooze length in force")
    if days is None and DAYS in fields:
        return (f"override reason `{code}` states `{{days}}` but is not a snooze reason",
                f"{SETTING} gives days to the snooze reasons: add `{code}=N` there or remove "
                "`{days}`")
    if days is not None and DAYS not in fields:
        return (f"snooze reason `{code}` silences a rule for {days} days ({SETTING}) but its "
                "text does not state `{days}`",
                "write `{days}` where the text says how long: `do not show again for {days}`")
    return None


def _filled(code: str, text: str, days: int | None) -> tuple[str, tuple[str, str] | None]:
    """The reason's text with ``{days}`` filled in, and the problem with it if any."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return text, (f"bad placeholder in override reason `{code}`: {exc}", "write `{{` for a brace")
    problem = _problem(code, {field for _, field, _, _ in parts if field is not None}, days)
    if problem:
        return text, problem
    return "".join(literal + (format(_length(days), spec) if field and days else "")
                   for literal, field, spec, _ in parts), None


def compile_override_reasons(files: RuleFiles, snooze_days: Mapping[str, int]
                             ) -> tuple[dict[str, str], list[ConfigError]]:
    """Each declared reason's text, a snooze reason's with its length filled in."""
    entry = files.header.get("override_reasons")
    declared: Mapping[str, str] = entry.value if entry else {}
    out: dict[str, str] = {}
    errors: list[ConfigError] = []
    for code, text in declared.items():
        out[code], problem = _filled(code, text, snooze_days.get(code))
        if problem:
            errors.append(entry.error((code,), *problem))  # type: ignore[union-attr]
    missing = [code for code in snooze_days if code not in declared]
    where = entry or files.header.get("ruleset")
    if missing and files.complete and where is not None:
        errors.append(where.doc.error(
            ("override_reasons",),
            f"snooze reason {', '.join(f'`{c}`' for c in missing)} ({SETTING}) is not declared "
            "under `override_reasons`, so no card can offer it",
            "declare it with a text stating `{days}`, or set " + SETTING + " to the snooze "
            "reasons the rule set declares"))
    return out, errors
