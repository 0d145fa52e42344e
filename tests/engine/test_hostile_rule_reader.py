"""Whatever bytes a rule file holds, reading it gives located errors, never a crash.

Each refused file has a plain twin that loads, so a reader refusing everything fails here too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service import cli, yamlsource
from service.engine import load_ruleset, rulefiles
from service.yamlsource import MAX_FILE_BYTES, MAX_REPORTED_ERRORS, ConfigError, ConfigFileError

HOSTILE = Path("rules") / "r99-hostile.yaml"
R13 = Path("rules") / "r13-documentation-gap.yaml"
MERGED = "{title: 1, valueset: ces-signs, resources: [Observation]}"

# file text -> (line, column, what the message names)
REFUSED = {
    "nul-byte": ("findings:\n  x\0y: 1\n", 2, 4, "#x0000"),
    "control-character": ("findings:\n  ok: 1\n  x\x07: 1\n", 3, 4, "#x0007"),
    "omap-tag": ("findings: !!omap [a: 1]\n", 1, 11, "`!!omap`"),
    "pairs-tag": ("findings: !!pairs [a: 1]\n", 1, 11, "`!!pairs`"),
    "set-tag": ("findings: !!set {a, b}\n", 1, 11, "`!!set`"),
    "binary-tag": ("findings:\n  x: !!binary aGVsbG8=\n", 2, 6, "`!!binary`"),
    "timestamp-tag": ("findings:\n  x: !!timestamp 2026-01-01\n", 2, 6, "`!!timestamp`"),
    "bare-tag": ("findings:\n  x: ! 12\n", 2, 6, "`!`"),
    "merge-key": (f"findings: {{x: {{<<: {MERGED}}}}}\n", 1, 16, "merge key"),
    "block-merge-key": ("findings:\n  x:\n    <<: {title: t}\n", 3, 5, "merge key"),
    "huge-integer": ("findings:\n  x:\n    value: {le: 1" + "0" * 5000 + "}\n", 3, 17,
                     "more than 30 digits"),
    "huge-float": ("findings:\n  x:\n    value: {le: 1" + "0" * 40 + ".5}\n", 3, 17,
                   "more than 30 digits"),
    "impossible-date": ("findings:\n  x:\n    within: 2026-02-30\n", 3, 13, "day is out of range"),
    "int-tag-on-text": ("findings:\n  x:\n    within: !!int abc\n", 3, 13, "invalid literal"),
    "bool-tag-on-text": ("findings:\n  x:\n    history: !!bool maybe\n", 3, 14, "maybe"),
    "integer-key": ("findings:\n  1: {title: t}\n", 2, 3, "a key must be text"),
    "null-key": ("findings:\n  ~: {title: t}\n", 2, 3, "a key must be text"),
    "bool-key": ("findings:\n  true: {title: t}\n", 2, 3, "a key must be text"),
    "list-key": ("findings:\n  ? [a, b]\n  : {title: t}\n", 2, 5, "a key must be text"),
    "mapping-key": ("findings:\n  ? {a: 1}\n  : {title: t}\n", 2, 5, "a key must be text"),
}


def _errors(rules_dir: Path) -> list[ConfigError]:
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_dir)
    return info.value.errors


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hostile_file_is_one_located_error(rules_copy, case):
    text, line, column, named = REFUSED[case]
    (rules_copy / HOSTILE).write_text(text, encoding="utf-8")
    [error] = _errors(rules_copy)
    assert (error.file, error.line, error.column) == (str(rules_copy / HOSTILE), line, column)
    assert named in error.message


@pytest.mark.parametrize("text", [
    "rules: []\n",
    "findings: {}\n",
    'rules: !!seq []\nscores: !!map {}\n',
])
def test_the_plain_twin_loads(rules_copy, text):
    (rules_copy / HOSTILE).write_text(text, encoding="utf-8")
    assert len(load_ruleset(rules_copy).rules) == 13


def test_the_core_tags_written_out_read_as_plain_values(rules_copy):
    path = rules_copy / R13
    text = path.read_text(encoding="utf-8")
    text = text.replace('title: "R13: documentation gap"', 'title: !!str "R13: documentation gap"')
    text = text.replace("precedence: 90", "precedence: !!int '90'")
    path.write_text(text, encoding="utf-8")
    [rule] = [r for r in load_ruleset(rules_copy).rules if r.id == "documentation-gap"]
    assert (rule.spec.title, rule.spec.precedence) == ("R13: documentation gap", 90)


def test_a_number_of_30_digits_is_read(rules_copy):
    (rules_copy / HOSTILE).write_text("rules: []\nx: " + "1" * 30 + "\n", encoding="utf-8")
    [error] = _errors(rules_copy)
    assert "unknown key `x`" in error.message  # read, then refused by the schema


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(rules_copy):
    path = rules_copy / HOSTILE
    path.write_text("rules: [" + "{id: x}, " * (MAX_FILE_BYTES // 8) + "]\n", encoding="utf-8")
    [error] = _errors(rules_copy)
    assert (error.file, error.line, error.column) == (str(path), 1, 1)
    assert f"{path.stat().st_size} bytes" in error.message
    assert f"limit is {MAX_FILE_BYTES} bytes" in error.message


def test_a_file_at_the_size_limit_loads(rules_copy):
    head = "rules: []\n"
    (rules_copy / HOSTILE).write_text(head + "#" * (MAX_FILE_BYTES - len(head) - 1) + "\n")
    assert (rules_copy / HOSTILE).stat().st_size == MAX_FILE_BYTES
    assert len(load_ruleset(rules_copy).rules) == 13


def _padding_files(rules_dir: Path, count: int, size: int) -> None:
    for i in range(count):
        (rules_dir / "rules" / f"r9{i}-padding.yaml").write_text("#" * (size - 1) + "\n")


def _tree_limit(rules_dir: Path, monkeypatch) -> int:
    """A tree limit 100 kB over the bundled files, so a test pads past it cheaply."""
    limit = sum(p.stat().st_size for p in rules_dir.rglob("*.yaml")) + 100_000
    monkeypatch.setattr(rulefiles, "MAX_TREE_BYTES", limit)
    return limit


def test_a_rule_tree_over_its_size_limit_is_refused_naming_the_directory(rules_copy, monkeypatch):
    limit = _tree_limit(rules_copy, monkeypatch)
    _padding_files(rules_copy, 3, 40_000)
    [error] = _errors(rules_copy)
    assert error.file == str(rules_copy)
    assert f"limit is {limit} bytes" in error.message


def test_a_rule_tree_under_its_size_limit_loads(rules_copy, monkeypatch):
    _tree_limit(rules_copy, monkeypatch)
    _padding_files(rules_copy, 2, 40_000)
    assert len(load_ruleset(rules_copy).rules) == 13


def test_more_files_than_the_limit_are_refused(rules_copy, monkeypatch):
    monkeypatch.setattr(yamlsource, "MAX_FILES", 25)
    _padding_files(rules_copy, 4, 10)
    [error] = _errors(rules_copy)
    assert error.file == str(rules_copy) and "more than 25" in error.message


def test_files_up_to_the_limit_load(rules_copy, monkeypatch):
    monkeypatch.setattr(yamlsource, "MAX_FILES", 25)
    _padding_files(rules_copy, 3, 10)
    assert len(load_ruleset(rules_copy).rules) == 13


@pytest.mark.parametrize("kind", ["dangling-link", "fifo", "link-to-fifo"])
def test_a_yaml_name_that_is_not_a_regular_file_is_a_located_error(rules_copy, kind):
    path = rules_copy / HOSTILE
    if kind == "dangling-link":
        path.symlink_to(rules_copy / "nowhere.yaml")
    elif kind == "fifo":
        os.mkfifo(path)  # opening it to read would block until a writer came
    else:
        os.mkfifo(rules_copy / "pipe")
        path.symlink_to(rules_copy / "pipe")
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(path), 1)
    assert "not a regular file" in error.message


def test_a_link_to_a_regular_file_loads(rules_copy, tmp_path):
    (tmp_path / "elsewhere.yaml").write_text("rules: []\n")
    (rules_copy / HOSTILE).symlink_to(tmp_path / "elsewhere.yaml")
    assert len(load_ruleset(rules_copy).rules) == 13


def _many_bad_findings(rules_dir: Path, count: int) -> None:
    entries = "".join(f"  bad_{i}: {{title: 1}}\n" for i in range(count))
    (rules_dir / HOSTILE).write_text("findings:\n" + entries, encoding="utf-8")


def test_thousands_of_errors_are_shown_as_the_first_ones_and_a_count(rules_copy):
    _many_bad_findings(rules_copy, 400)
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_copy)
    total = len(info.value.errors)
    assert total > MAX_REPORTED_ERRORS
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_REPORTED_ERRORS + 1
    assert lines[-1] == f"... and {total - MAX_REPORTED_ERRORS} more ({total} errors in all)"


def test_a_few_errors_are_all_shown(rules_copy):
    _many_bad_findings(rules_copy, 2)
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_copy)
    assert str(info.value).splitlines() == [str(e) for e in info.value.errors]


def test_rules_check_prints_at_most_the_first_errors_and_exits_1(rules_copy, capsys):
    _many_bad_findings(rules_copy, 400)
    assert cli.main(["rules", "check", "--rules", str(rules_copy)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) <= MAX_REPORTED_ERRORS + 2
    assert err[-1].endswith("the rule set is not valid") and "more (" in err[-2]


@pytest.mark.parametrize("case", ["nul-byte", "huge-integer", "merge-key", "integer-key"])
def test_rules_check_locates_a_hostile_file_and_exits_1(rules_copy, capsys, case):
    text, line, column, _ = REFUSED[case]
    (rules_copy / HOSTILE).write_text(text, encoding="utf-8")
    assert cli.main(["rules", "check", "--rules", str(rules_copy)]) == 1
    assert f"{rules_copy / HOSTILE}:{line}:{column}" in capsys.readouterr().err
