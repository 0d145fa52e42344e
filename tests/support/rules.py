"""The bundled rule set compiled once per test run, and editing a private copy of it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from service.config import DEFAULT_SNOOZE_REASONS, PROJECT_ROOT
from service.engine import RuleSet, load_ruleset
from service.yamlsource import ConfigFileError

RULES_DIR = PROJECT_ROOT / "rules"


@cache
def compiled_rules(snooze_reasons: tuple[tuple[str, int], ...] = DEFAULT_SNOOZE_REASONS) -> RuleSet:
    """The bundled rules, compiled on first use only (per snooze setting, which their texts
    state); raises ConfigFileError when invalid."""
    return load_ruleset(RULES_DIR, snooze_reasons)


def bundled_ruleset(snooze_reasons: tuple[tuple[str, int], ...] = DEFAULT_SNOOZE_REASONS) -> RuleSet:
    """The bundled rules for a test: invalid files fail that test, naming every error, instead
    of stopping collection."""
    try:
        return compiled_rules(snooze_reasons)
    except ConfigFileError as exc:
        pytest.fail(f"the bundled rule files are invalid:\n{exc}", pytrace=False)


def case_ids() -> list[str]:
    """The ``id`` of every case written beside the rules; a placeholder when the rules are
    invalid (the test given it then fails with the errors)."""
    try:
        return [spec.id for _, spec in compiled_rules().cases]
    except ConfigFileError:
        return ["rule-files-invalid"]


def case(case_id: str):
    """(rule, case) of the case with that ``id``."""
    ruleset = bundled_ruleset()
    found = next((c for c in ruleset.cases if c[1].id == case_id), None)
    if found is None:
        pytest.fail(f"no rule case {case_id}", pytrace=False)
    return found


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in ``path`` with ``new``; ``old`` must be there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def hook_ruleset_lines(hooks_dir: Path = PROJECT_ROOT / "hooks") -> dict[Path, int]:
    """Each hook file and the line of its ``ruleset:`` key, read from the text."""
    return {path: next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                       if line.startswith("ruleset:"))
            for path in sorted(hooks_dir.glob("*.yaml"))}
