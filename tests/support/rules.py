"""The bundled rule set compiled once per test run, and editing a private copy of it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from service.engine import RuleSet, load_ruleset
from service.yamlsource import ConfigFileError

RULES_DIR = PROJECT_ROOT / "rules"


@cache
def compiled_rules() -> RuleSet:
    """The bundled rules, compiled on first use only; raises ConfigFileError when invalid."""
    return load_ruleset(RULES_DIR)


def bundled_ruleset() -> RuleSet:
    """The bundled rules for a test: invalid files fail that test, naming every error, instead
    of stopping collection."""
    try:
        return compiled_rules()
    except ConfigFileError as exc:
        pytest.fail(f"the bundled rule files are invalid:\n{exc}", pytrace=False)


def case_ids() -> list[str]:
    """``rule-id[index]`` of every case written beside the rules; none when the rules are
    invalid (the tests that load them then fail with the errors)."""
    try:
        return [f"{rule.id}[{index}]" for rule, index, _ in compiled_rules().cases]
    except ConfigFileError:
        return ["rule-files-invalid"]


def case(case_id: str):
    """(rule, index, case) of the case named ``rule-id[index]``."""
    ruleset = bundled_ruleset()
    found = next((c for c in ruleset.cases if f"{c[0].id}[{c[1]}]" == case_id), None)
    if found is None:
        pytest.fail(f"no rule case {case_id}", pytrace=False)
    return found


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in ``path`` with ``new``; ``old`` must be there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
