"""Rule files written to break the compiler get located errors, never a crash or a side effect.

Each refused file has a valid neighbour that still loads, so a compiler that refused
everything would fail here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from service.engine import load_ruleset
from service.engine.conditions import MAX_CONDITION_DEPTH
from service.yamlsource import ConfigFileError
from tests.support.rules import edit

R13 = Path("rules") / "r13-documentation-gap.yaml"
R13_WHEN = """    when:
      all:
        - back_or_hip_pain
        - any:
            - {duration: pain_duration, unknown: true}
            - {not: {any: [spine_dominant, hip_dominant, mixed_pattern]}}
"""
R13_WHEN_FLOW = ("{all: [back_or_hip_pain, {any: [{duration: pain_duration, unknown: true}, "
                 "{not: {any: [spine_dominant, hip_dominant, mixed_pattern]}}]}]}")  # 4 levels


def _errors(rules_dir):
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_dir)
    return info.value.errors


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_python_tag_is_a_located_error_and_runs_nothing(rules_copy, tmp_path):
    marker = tmp_path / "PWNED"
    hostile = rules_copy / "rules" / "r99-hostile.yaml"
    hostile.write_text(f'rules: !!python/object/apply:os.system ["touch {marker}"]\n')
    [error] = _errors(rules_copy)
    assert (error.file, error.line, error.column) == (str(hostile), 1, 8)
    assert "unknown tag `!!python/object/apply:os.system`" in error.message
    assert not marker.exists()


def test_the_same_file_with_plain_data_loads(rules_copy):
    (rules_copy / "rules" / "r99-hostile.yaml").write_text("rules: []\n")
    assert len(load_ruleset(rules_copy).rules) == 13


@pytest.mark.parametrize("tagged", ["!include other.yaml", "!!python/name:os.system",
                                    "!custom {a: 1}"])
def test_a_custom_tag_anywhere_is_located_at_the_tag(rules_copy, tagged):
    path = rules_copy / R13
    edit(path, "    title: ", f"    title: {tagged}\n    x_title: ")
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(path), _line(path, tagged))
    assert "unknown tag" in error.message


def _nested_when(rules_dir: Path, wrappers: int) -> Path:
    """R13's condition (4 levels) inside ``wrappers`` more levels of ``not``."""
    path = rules_dir / R13
    edit(path, R13_WHEN, "    when: " + "{not: " * wrappers + R13_WHEN_FLOW + "}" * wrappers + "\n")
    return path


def test_a_condition_at_the_depth_limit_loads(rules_copy):
    _nested_when(rules_copy, MAX_CONDITION_DEPTH - 4)
    assert "documentation-gap" in {r.id for r in load_ruleset(rules_copy).rules}


@pytest.mark.parametrize("wrappers", [MAX_CONDITION_DEPTH - 3, 300, sys.getrecursionlimit() + 1])
def test_a_condition_nested_too_deep_is_one_located_error(rules_copy, wrappers):
    path = _nested_when(rules_copy, wrappers)
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(path), _line(path, "    when: {not:"))
    assert "levels deep" in error.message


def test_a_duration_past_a_hundred_years_is_one_located_error(rules_copy):
    main = rules_copy / "ruleset.yaml"
    edit(main, "    value: 6w", "    value: 99999999999999999999d")
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(main), _line(main, "99999999999999999999d"))
    assert "at most 100 years" in error.message


def test_a_duration_of_a_hundred_years_loads(rules_copy):
    edit(rules_copy / "ruleset.yaml", "    value: 6w", "    value: 100y")
    assert load_ruleset(rules_copy).parameters["imaging_wait"].amount == 100
