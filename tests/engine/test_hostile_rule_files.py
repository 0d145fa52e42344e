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
R13_PAIN = "        - back_or_hip_pain\n"
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


def _alias_file(rules_dir: Path, levels: int) -> Path:
    """``levels`` of anchors, each listing the one before it ten times: read as plain data, the
    last holds 10 ** levels strings (the "billion laughs")."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    path = rules_dir / "rules" / "r99-aliases.yaml"
    path.write_text("\n".join([*lines, "rules: []"]) + "\n")
    return path


@pytest.mark.timeout(30)
def test_a_yaml_alias_is_a_located_error_before_it_is_expanded(rules_copy):
    path = _alias_file(rules_copy, 9)  # a thousand million strings, were it expanded
    [error] = _errors(rules_copy)
    assert (error.file, error.line, error.column) == (str(path), 2, 10)
    assert "alias" in error.message


def test_an_anchor_that_no_alias_repeats_loads(rules_copy):
    edit(rules_copy / R13, "    title: ", "    title: &r13_title ")
    assert "documentation-gap" in {r.id for r in load_ruleset(rules_copy).rules}


def _chain(rules_dir: Path, links: int) -> Path:
    """R13 also needs ``chain_0``, a named condition reaching ``spine_dominant`` through
    ``links`` more named conditions, each two levels of ``not`` around the next."""
    lines = ["conditions:"]
    lines += [f"  chain_{i}: {{not: {{not: chain_{i + 1}}}}}" for i in range(links)]
    lines.append(f"  chain_{links}: spine_dominant")
    path = rules_dir / "rules" / "r99-chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    edit(rules_dir / R13, "        - back_or_hip_pain\n",
         "        - back_or_hip_pain\n        - {not: chain_0}\n")
    return path


@pytest.mark.parametrize("links", [MAX_CONDITION_DEPTH, 400, sys.getrecursionlimit()])
def test_named_conditions_nesting_too_deep_together_are_one_located_error(rules_copy, links):
    """Each condition is shallow, but evaluation recurses through the names: the chain is
    measured whole and refused at the first condition past the limit, not at every hook call."""
    path = _chain(rules_copy, links)
    [error] = _errors(rules_copy)
    assert error.file == str(path)
    assert "levels deep" in error.message and "named conditions" in error.message


def test_named_conditions_within_the_limit_together_load_and_evaluate(rules_copy):
    from datetime import UTC, datetime

    from service.engine import evaluate
    from service.fixtures import bundle_resources, load_bundle

    _chain(rules_copy, MAX_CONDITION_DEPTH // 3 - 1)  # 3 levels a link: just under the limit
    ruleset = load_ruleset(rules_copy)
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    bundle = load_bundle(Path("fixtures") / "patients" / "s01-sciatica-8-weeks.json", now)
    ev = evaluate(ruleset, bundle_resources(bundle), now=now, hook="patient-view")
    assert "spine-pattern-mri" in ev.rule_ids


FINDINGS = Path("findings.yaml")
S6 = '      - {feature: "S6 neuropathic quality", weight: 1, when: neuropathic_quality}\n'


def _spine_component(rules_dir: Path, when: str) -> Path:
    """SpineScore with one more component, true when ``when`` holds."""
    path = rules_dir / FINDINGS
    edit(path, S6, S6 + f'      - {{feature: "S99 extra", weight: 1, when: {when}}}\n')
    return path


@pytest.mark.parametrize("when", ["{score: spine, ge: 1}", "spine_dominant",
                                  "{not: {any: [mixed_pattern, below_knee]}}"])
def test_a_score_that_uses_itself_is_one_located_error(rules_copy, when):
    """Directly, or through the named conditions that compare it: every call would recurse
    until Python stops it, and the red-flag cards would go with it."""
    path = _spine_component(rules_copy, when)
    errors = _errors(rules_copy)
    assert [(e.file, e.line) for e in errors] == [(str(path), _line(path, "  spine:"))]
    assert "uses itself" in errors[0].message and "spine" in errors[0].message


def test_named_conditions_that_use_each_other_are_one_error_naming_both(rules_copy):
    path = rules_copy / "rules" / "r99-loop.yaml"
    path.write_text("conditions:\n  loop_a: {not: loop_b}\n  loop_b: {any: [below_knee, loop_a]}\n"
                    "  loop_c: {all: [loop_c]}\n")
    first, itself = _errors(rules_copy)
    assert (first.file, first.line) == (str(path), 2)
    assert first.message == "condition `loop_a` uses itself through condition `loop_b`"
    assert (itself.line, itself.message) == (4, "condition `loop_c` uses itself")


def test_a_score_using_another_score_loads_and_counts(rules_copy):
    from datetime import UTC, datetime

    from service.engine import evaluate
    from service.fixtures import bundle_resources, load_bundle

    _spine_component(rules_copy, "{score: hip, le: 2}")
    ruleset = load_ruleset(rules_copy)
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    bundle = load_bundle(Path("fixtures") / "patients" / "s01-sciatica-8-weeks.json", now)
    ev = evaluate(ruleset, bundle_resources(bundle), now=now, hook="patient-view")
    assert any(p["feature"] == "S99 extra" for p in ev.trace["derived"]["spine"]["components"])


def test_scores_and_conditions_nesting_too_deep_together_are_one_located_error(rules_copy):
    """Each score's component compares the next score through a named condition."""
    links = 400
    lines = ["scores:"]
    lines += [f"  deep_{i}:\n    title: deep {i}\n    components:\n"
              f"      - {{feature: f, weight: 1, when: deep_c{i + 1}}}" for i in range(links)]
    lines += ["conditions:"] + [f"  deep_c{i}: {{score: deep_{i}, ge: 1}}" for i in range(1, links)]
    lines.append(f"  deep_c{links}: below_knee")
    (rules_copy / "rules" / "r99-deep.yaml").write_text("\n".join(lines) + "\n")
    errors = _errors(rules_copy)
    assert len(errors) == 1 and "levels deep" in errors[0].message


R01 = Path("rules") / "r01-cauda-equina.yaml"
AGE_14 = "fixture: fixtures/patients/age-14y-ces.json"


def _case_problem(rules_dir: Path, fixture: str) -> list[str]:
    from service.engine.casetests import run_all

    edit(rules_dir / R01, AGE_14, f"fixture: {fixture}")
    [result] = [r for r in run_all(load_ruleset(rules_dir)) if r.case_id == "ces-at-age-14"]
    return result.problems


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fixture", ["/dev/zero", "/etc/passwd", "../../../../../../etc/passwd",
                                     "fixtures/patients/../../../../../../../etc/hostname"])
def test_a_case_fixture_outside_the_rules_and_fixtures_trees_is_not_read(rules_copy, fixture):
    """Whoever can write a rule file must not make `rules test` (or the workbench, in the
    server) read any file of the host, nor one that never ends."""
    [problem] = _case_problem(rules_copy, fixture)
    assert problem.startswith("cannot read case data:") and "outside" in problem


def test_a_case_fixture_linked_out_of_the_tree_is_not_read(rules_copy, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text((Path("fixtures") / "patients" / "age-14y-ces.json").read_text())
    (rules_copy / "fixtures" / "patients").mkdir(parents=True)
    (rules_copy / "fixtures" / "patients" / "linked.json").symlink_to(outside)
    [problem] = _case_problem(rules_copy, "fixtures/patients/linked.json")
    assert "outside" in problem


def test_a_case_fixture_past_the_size_limit_is_not_read(rules_copy):
    from service.engine.casetests import MAX_FIXTURE_BYTES

    big = rules_copy / "big.json"
    big.write_bytes(b" " * (MAX_FIXTURE_BYTES + 1) + b"{}")
    [problem] = _case_problem(rules_copy, "big.json")
    assert "larger than" in problem


@pytest.mark.parametrize("fixture", [AGE_14.split(": ")[1], "rules/../fixtures/patients/age-14y-ces.json"])
def test_a_case_fixture_in_the_tree_is_read(rules_copy, fixture):
    """The bundled fixtures (beside the rules here, in the installed defaults when installed)."""
    assert _case_problem(rules_copy, fixture) == []


@pytest.mark.parametrize("condition", ["{score: [spine], ge: 1}", "{count: {a: 1}, ge: 1}",
                                       "{hook: [[patient-view]]}", "{hook: {a: 1}}",
                                       "{score: spine, ge: true}", "{duration: [x], unknown: true}"])
def test_a_condition_of_the_wrong_shape_is_one_located_error(rules_copy, condition):
    path = rules_copy / R13
    edit(path, R13_PAIN, f"        - {condition}\n")
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(path), _line(path, condition))


@pytest.mark.parametrize("condition", ["{score: spine, ge: 1}", "{hook: [patient-view]}",
                                       "{hook: order-sign}"])
def test_a_condition_of_the_right_shape_loads(rules_copy, condition):
    edit(rules_copy / R13, R13_PAIN, f"        - {condition}\n")
    assert "documentation-gap" in {r.id for r in load_ruleset(rules_copy).rules}


def test_a_set_whose_own_cases_cannot_be_evaluated_is_refused_at_the_rule(rules_copy, monkeypatch):
    """The last guard: whatever a compiled set still gets wrong, if evaluating a case beside a
    rule raises, serving the set would answer every such call with an error, red flags
    included, so it is refused (the server keeps the last good set)."""
    import importlib

    evaluate_module = importlib.import_module("service.engine.evaluate")

    real = evaluate_module._decide

    def failing(ev, rule, evidence):
        if rule.id == "cauda-equina":
            raise RecursionError("maximum recursion depth exceeded")
        return real(ev, rule, evidence)

    monkeypatch.setattr(evaluate_module, "_decide", failing)
    errors = _errors(rules_copy)
    path = rules_copy / R01
    assert errors and all(e.file == str(path) for e in errors)
    assert "RecursionError" in errors[0].message and "ces-" in errors[0].key
    monkeypatch.setattr(evaluate_module, "_decide", real)
    assert "cauda-equina" in {r.id for r in load_ruleset(rules_copy).rules}
