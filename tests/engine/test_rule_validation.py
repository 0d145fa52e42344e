"""Broken rule files give located errors with hints, all at once."""

from __future__ import annotations

import pytest

from service.engine import load_ruleset
from service.engine.codes import check_icd10cm, check_loinc, check_snomed
from service.yamlsource import ConfigFileError
from tests.support.rules import edit


def _errors(rules_dir):
    with pytest.raises(ConfigFileError) as info:
        load_ruleset(rules_dir)
    return info.value.errors


def test_typo_in_key_names_file_line_and_suggests_the_right_key(rules_copy):
    path = rules_copy / "rules" / "r03-serious-pathology.yaml"
    edit(path, "    suppresses: [early-lumbar-imaging", "    suppress: [early-lumbar-imaging")
    [error] = _errors(rules_copy)
    assert error.file == str(path)
    assert error.line == path.read_text().splitlines().index(
        "    suppress: [early-lumbar-imaging, documentation-gap]") + 1
    assert error.key == "rules[0].suppress"
    assert "did you mean `suppresses`" in error.hint


def test_typo_in_the_main_file_does_not_cascade_into_errors_elsewhere(rules_copy):
    main = rules_copy / "ruleset.yaml"
    edit(main, "version: 2026.11.0", "verson: 2026.11.0")
    errors = _errors(rules_copy)
    assert [(e.file, e.key) for e in errors] == [(str(main), "verson"), (str(main), "version")]
    assert "did you mean `version`" in errors[0].hint


def test_bad_snomed_check_digit_is_located(rules_copy):
    path = rules_copy / "valuesets" / "red-flags.yaml"
    edit(path, '"267064002": Retention of urine', '"267064003": Retention of urine')
    [error] = _errors(rules_copy)
    assert error.file == str(path) and error.line > 1
    assert "Verhoeff" in error.message and "267064003" in error.message


def test_unknown_references_are_all_reported_with_hints(rules_copy):
    edit(rules_copy / "findings.yaml", "valueset: ces-signs", "valueset: ces-sign")
    edit(rules_copy / "rules" / "r05-spine-pattern-mri.yaml", "{order: mri-lumbar}",
         "{order: mri-lumbr}")
    edit(rules_copy / "rules" / "r08-injection-confirms-hip.yaml",
         "suppresses: [diagnostic-hip-injection,", "suppresses: [diagnostic-hip-injections,")
    errors = _errors(rules_copy)
    messages = {e.message: e for e in errors}
    assert "did you mean `ces-signs`" in messages["unknown value set `ces-sign`"].hint
    assert "did you mean `mri-lumbar`" in messages["unknown order `mri-lumbr`"].hint
    unknown_rule = messages["unknown rule `diagnostic-hip-injections`"]
    assert unknown_rule.file.endswith("r08-injection-confirms-hip.yaml")


def test_precedence_cycle_and_inverted_suppression_are_rejected(rules_copy):
    edit(rules_copy / "rules" / "r09-injection-points-to-spine.yaml",
         "suppresses: [diagnostic-hip-injection]",
         "suppresses: [diagnostic-hip-injection, injection-confirms-hip]")
    messages = [e.message for e in _errors(rules_copy)]
    assert any("cannot suppress `injection-confirms-hip`" in m for m in messages)


def test_summary_over_139_characters_is_rejected(rules_copy):
    edit(rules_copy / "rules" / "r13-documentation-gap.yaml", 'summary: "Document pain onset',
         'summary: "' + "x" * 120 + " Document pain onset")
    [error] = _errors(rules_copy)
    assert "limit is 139" in error.message




@pytest.mark.parametrize(("code", "ok"), [("267064002", True), ("394451000119106", True),
                                          ("267064003", False), ("267064012", False)])
def test_snomed_check_digit_and_partition(code, ok):
    assert (check_snomed(code) is None) is ok


@pytest.mark.parametrize(("code", "ok"), [("72514-3", True), ("103234-1", True),
                                          ("72514-4", False), ("72514", False)])
def test_loinc_mod10_check_digit(code, ok):
    assert (check_loinc(code) is None) is ok


@pytest.mark.parametrize(("code", "ok"), [("M53.2X8", True), ("G83.4", True), ("R32", True),
                                          ("U07.1", True), ("U09.9", True),  # COVID-19, post COVID-19
                                          ("M5441", False), ("U0.71", False)])
def test_icd10cm_pattern(code, ok):
    assert (check_icd10cm(code) is None) is ok


RED_FLAG_CANCER = "  C00-C96: "


@pytest.mark.parametrize("family", ["C96-C00", "M16.9-M16.2", "C50.9-C50.1"])
def test_a_reversed_code_range_is_an_error_at_the_line(rules_copy, family):
    """A range running high to low holds no code: a red-flag value set would match nothing."""
    path = rules_copy / "valuesets" / "red-flags.yaml"
    edit(path, RED_FLAG_CANCER, f"  {family}: ")
    [error] = _errors(rules_copy)
    assert error.file == str(path) and "holds no code" in error.message and family in error.message


@pytest.mark.parametrize("family", ["C00-C96", "C50-C50.9", "C50.1-C50", "C50.1-C50.9", "C50"])
def test_a_code_range_running_low_to_high_loads(rules_copy, family):
    edit(rules_copy / "valuesets" / "red-flags.yaml", RED_FLAG_CANCER, f"  {family}: ")
    assert f"~{family}" in {code for _, code in load_ruleset(rules_copy).valuesets["malignancy-history"]}


def test_a_file_that_does_not_parse_gives_its_syntax_error_and_no_cascade(rules_copy):
    # R2 is named by R1's `suppresses` and by cases in other files; a bad indent hides it all.
    path = rules_copy / "rules" / "r02-progressive-neuro-deficit.yaml"
    edit(path, "    precedence: 20\n", "      precedence: 20\n")
    errors = _errors(rules_copy)
    assert [(e.file, e.message.split(":")[0]) for e in errors] == [(str(path), "YAML syntax")]
    assert errors[0].line == path.read_text().splitlines().index("      precedence: 20") + 1


# (what the main file had, a mistake there, the valid neighbour of the mistake)
MAIN_FILE_MISTAKES = {
    "indentation": ("  imaging_wait:", "   imaging_wait:", "  imaging_wait:   # R4, R5, R9"),
    "duplicate-key": ("version: 2026.11.0", "version: 2026.11.0\nversion: 2026.11.1",
                      "version: 2026.11.1"),
    "wrong-type": ("version: 2026.11.0", "version: 1.0e3", 'version: "1.0e3"'),
}


@pytest.mark.parametrize("mistake", sorted(MAIN_FILE_MISTAKES))
def test_a_mistake_in_the_main_file_gives_its_one_error_and_no_cascade(rules_copy, mistake):
    old, bad, _ = MAIN_FILE_MISTAKES[mistake]
    main = rules_copy / "ruleset.yaml"
    edit(main, old, bad)
    [error] = _errors(rules_copy)
    assert error.file == str(main) and error.line > 1


@pytest.mark.parametrize("mistake", sorted(MAIN_FILE_MISTAKES))
def test_the_valid_neighbour_of_a_main_file_mistake_loads(rules_copy, mistake):
    old, _, good = MAIN_FILE_MISTAKES[mistake]
    edit(rules_copy / "ruleset.yaml", old, good)
    assert load_ruleset(rules_copy).name == "spine-hip"


def test_a_version_written_as_a_number_is_one_error_naming_the_field(rules_copy):
    edit(rules_copy / "ruleset.yaml", "version: 2026.11.0", "version: 1.0e3")
    [error] = _errors(rules_copy)
    assert (error.key, error.line) == ("version", 4)
    assert "found the number 1000" in error.message and "quote" in error.hint


TITLE = "    title: Sphincter disturbance (urinary retention or incontinence, faecal incontinence)"


def test_an_unquoted_date_as_text_is_one_error_saying_to_quote_it(rules_copy):
    """YAML reads `2026-01-01` as a date: an admin writing one as a title is told why."""
    edit(rules_copy / "findings.yaml", TITLE, "    title: 2026-01-01")
    [error] = _errors(rules_copy)
    assert error.key == "findings.ces_sign.title"
    assert "found the date 2026-01-01" in error.message and "quote" in error.hint


def test_a_quoted_date_as_text_is_taken_as_written(rules_copy):
    edit(rules_copy / "findings.yaml", TITLE, '    title: "2026-01-01"')
    assert load_ruleset(rules_copy).findings["ces_sign"].spec.title == "2026-01-01"


def test_with_every_file_parsed_an_unknown_rule_is_still_reported(rules_copy):
    edit(rules_copy / "rules" / "r01-cauda-equina.yaml", "progressive-neuro-deficit]",
         "progresive-neuro-deficit]")
    [error] = _errors(rules_copy)
    assert error.message == "unknown rule `progresive-neuro-deficit`"
    assert "did you mean `progressive-neuro-deficit`" in error.hint


R01 = "r01-cauda-equina.yaml"
R03 = "r03-serious-pathology.yaml"


def _line(path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_a_case_without_an_id_is_located_at_the_case(rules_copy):
    path = rules_copy / "rules" / R03
    edit(path, "      - id: fever-day-5\n        name:", "      - name:")
    [error] = _errors(rules_copy)
    case_line = _line(path, "      - name: fever 5 days ago with back pain")
    assert (error.file, error.line) == (str(path), case_line)
    assert error.key == "rules[0].tests[0].id"


def test_a_case_id_that_is_not_kebab_case_is_located(rules_copy):
    path = rules_copy / "rules" / R03
    edit(path, "      - id: fever-day-5\n", "      - id: Fever day 5\n")
    [error] = _errors(rules_copy)
    assert (error.file, error.line, error.key) == (str(path), _line(path, "      - id: Fever day 5"),
                                                   "rules[0].tests[0].id")


def test_a_case_id_used_twice_is_located_at_the_second_naming_the_first(rules_copy):
    first, second = rules_copy / "rules" / R01, rules_copy / "rules" / R03
    edit(second, "      - id: fever-day-5\n", "      - id: ces-snomed\n")
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(second), _line(second, "      - id: ces-snomed"))
    assert error.key == "rules[0].tests[0].id"
    assert f"{first}:{_line(first, '      - id: ces-snomed')}" in error.message


def test_every_bundled_case_has_an_id_of_its_own(ruleset, rules_copy):
    written = [line.split(":", 1)[1].strip() for path in sorted((rules_copy / "rules").glob("*.yaml"))
               for line in path.read_text().splitlines() if line.startswith("      - id: ")]
    ids = [spec.id for _, spec in ruleset.cases]
    assert len(ids) == len(set(ids)) == len(ruleset.cases) > 40
    assert sorted(ids) == sorted(written)


def test_a_case_given_a_new_unused_id_is_known_by_it(rules_copy):
    edit(rules_copy / "rules" / R03, "      - id: fever-day-5\n", "      - id: fever-five-days-ago\n")
    ids = [spec.id for _, spec in load_ruleset(rules_copy).cases]
    assert "fever-five-days-ago" in ids and "fever-day-5" not in ids


CES_REASONS = "override_reasons: [red-flag-excluded, already-ordered, data-outdated]"


def test_a_snooze_reason_on_a_red_flag_rule_is_rejected_naming_it(rules_copy):
    path = rules_copy / "rules" / R01
    edit(path, CES_REASONS, CES_REASONS.replace("]", ", snooze-30d]"))
    [error] = _errors(rules_copy)
    assert (error.file, error.line) == (str(path), _line(path, "    " + CES_REASONS.replace(
        "]", ", snooze-30d]")))
    assert error.key == "rules[0].override_reasons[3]"
    assert "`snooze-30d`" in error.message and "never silenced" in error.message


def test_a_red_flag_rule_may_offer_a_reason_that_does_not_snooze(rules_copy):
    edit(rules_copy / "rules" / R01, CES_REASONS, CES_REASONS.replace("]", ", patient-declined]"))
    [rule] = [r for r in load_ruleset(rules_copy).rules if r.id == "cauda-equina"]
    assert "patient-declined" in rule.spec.override_reasons


R05 = "r05-spine-pattern-mri.yaml"


@pytest.mark.parametrize("key", ["summary", "description"])
def test_a_misspelt_parameter_placeholder_is_named_with_a_did_you_mean(rules_copy, key):
    path = rules_copy / "rules" / R05
    text = path.read_text()
    start = text.index(f"    {key}:")
    path.write_text(text[:start] + text[start:].replace("{imaging_wait}", "{imaging_wiat}", 1))
    [error] = _errors(rules_copy)
    assert (error.file, error.key) == (str(path), f"rules[0].{key}")
    assert "`{imaging_wiat}`" in error.message
    assert error.hint == "did you mean `imaging_wait`?"


def test_a_placeholder_far_from_every_name_lists_the_parameters_too(rules_copy):
    edit(rules_copy / "rules" / R05, "{imaging_wait}", "{zzz}")
    [error] = _errors(rules_copy)
    assert "`{zzz}`" in error.message
    assert "imaging_wait" in error.hint and "record_window" in error.hint


def test_a_correctly_spelt_parameter_placeholder_is_filled_in(rules_copy):
    [rule] = [r for r in load_ruleset(rules_copy).rules if r.id == "spine-pattern-mri"]
    assert "{imaging_wait}" not in rule.spec.summary + (rule.spec.description or "")
    assert "6 weeks" in rule.spec.summary


@pytest.mark.parametrize(("written", "named"), [
    ("{spine:d}", "{spine:d}"),  # a format the value cannot take: every call would fail
    ("{back_pain_duration:>900000000}", "{back_pain_duration:>900000000}"),  # a gigabyte card
    ("{spine:{side}}", "{spine:{side}}"),
    ("{spine!r}", "{spine!r}"),
    ("{imaging_wait:adjj}", "{imaging_wait:adjj}"),
    ("{imaging_wait!s}", "{imaging_wait!s}"),
])
def test_a_placeholder_format_or_conversion_is_refused_at_the_text(rules_copy, written, named):
    """A card value is written as it is, a parameter as itself or `:adj`; anything else would
    fail, or fill memory, when the card is made, not when the rules are checked."""
    path = rules_copy / "rules" / R05
    edit(path, "SpineScore {spine}", f"SpineScore {written}")
    [error] = _errors(rules_copy)
    assert (error.file, error.key) == (str(path), "rules[0].detail")
    assert f"`{named}`" in error.message


@pytest.mark.parametrize("written", ["{spine}", "{imaging_wait}", "{imaging_wait:adj}", "{{spine}}"])
def test_the_placeholders_a_card_may_use_load(rules_copy, written):
    edit(rules_copy / "rules" / R05, "SpineScore {spine}", f"SpineScore {written}")
    assert "spine-pattern-mri" in {r.id for r in load_ruleset(rules_copy).rules}


@pytest.mark.parametrize(("summary", "problem"), [
    ('""', "empty"), ('"   "', "empty"), (r'"\ud800 Possible cauda equina"', "surrogate"),
    (r'"Possible\u0000 cauda equina"', "control character"),
])
def test_a_summary_a_card_cannot_carry_is_refused(rules_copy, summary, problem):
    """CDS Hooks requires a summary; a lone surrogate cannot be written as UTF-8 (the audit
    record and the response would fail on it) and a control character is no text."""
    path = rules_copy / "rules" / R01
    edit(path, '    summary: "Possible cauda equina syndrome: same-day emergency assessment and '
               'emergency MRI lumbar spine."', f"    summary: {summary}")
    [error] = _errors(rules_copy)
    assert (error.file, error.key) == (str(path), "rules[0].summary")
    assert problem in error.message


def test_a_detail_with_any_real_text_loads(rules_copy):
    """Astral characters, a right-to-left mark, a backslash sequence in a literal block."""
    path = rules_copy / "rules" / R01
    edit(path, "    detail: |\n", "    detail: |\n      Zeichen \U0001d54f \u202e ok.\n")
    assert "cauda-equina" in {r.id for r in load_ruleset(rules_copy).rules}
    edit(path, "      Zeichen", '      Zeichen \\ud800')  # a literal block: not an escape
    assert "cauda-equina" in {r.id for r in load_ruleset(rules_copy).rules}


@pytest.mark.parametrize(("old", "new"), [
    ("    value: {le: 3}", "    value: {le: .nan}"),  # the grade 3/5 red flag would never match
    ("    value: {le: 3}", "    value: {le: -.inf}"),
    ('{feature: "S6 neuropathic quality", weight: 1,', '{feature: "S6 neuropathic quality", weight: .nan,'),
])
def test_nan_or_an_infinity_in_a_finding_or_a_score_is_refused(rules_copy, old, new):
    """NaN compares false with every number: it would switch a red flag or a score off quietly."""
    path = rules_copy / "findings.yaml"
    edit(path, old, new)
    [error] = _errors(rules_copy)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if new.strip() in text)
    assert (error.file, error.line) == (str(path), line)
    assert "finite" in error.message


@pytest.mark.parametrize("new", ["    value: {le: 3.5}", "    value: {le: 0}"])
def test_a_finite_finding_threshold_loads(rules_copy, new):
    edit(rules_copy / "findings.yaml", "    value: {le: 3}", new)
    assert "motor_weakness_severe" in load_ruleset(rules_copy).findings


@pytest.mark.parametrize(("old", "new", "file"), [
    ("min_age_years: 16", "min_age_years: -5", "ruleset.yaml"),
    ("min_age_years: 16", "min_age_years: 100000", "ruleset.yaml"),
    ("    value: 6w", "    value: \u0661\u0664d", "ruleset.yaml"),  # Arabic-Indic digits
    ("  - id: cauda-equina", "  - id: cauda-equina" + "-x" * 60, f"rules/{R01}"),
])
def test_an_implausible_value_is_refused(rules_copy, old, new, file):
    edit(rules_copy / file, old, new)
    [error] = _errors(rules_copy)
    assert error.file == str(rules_copy / file)


@pytest.mark.parametrize(("old", "new", "file"), [
    ("min_age_years: 16", "min_age_years: 0", "ruleset.yaml"),
    ("min_age_years: 16", "min_age_years: 18", "ruleset.yaml"),
    ("    value: 6w", "    value: 42d", "ruleset.yaml"),
])
def test_a_plausible_value_loads(rules_copy, old, new, file):
    edit(rules_copy / file, old, new)
    assert load_ruleset(rules_copy).rules


R13_SUMMARY = ("Document pain onset and distribution (groin vs buttock/below-knee) to enable "
               "spine-vs-hip guidance.")
# A placeholder and the text it gives for the onset-unknown patient: its widest.
WIDEST = {"side": "unspecified side", "back_pain_duration": "unknown duration"}


def _summary_at(rules_copy, name: str, shown_width: int) -> None:
    """R13's summary with ``{name}`` and filler, ``shown_width`` characters once filled in."""
    filler = "x" * (shown_width - len(R13_SUMMARY) - len(WIDEST[name]) - 2)
    edit(rules_copy / "rules" / "r13-documentation-gap.yaml", f'summary: "{R13_SUMMARY}"',
         f'summary: "{filler} {{{name}}} {R13_SUMMARY}"')


@pytest.mark.parametrize("name", sorted(WIDEST))
def test_a_summary_that_would_outgrow_the_limit_once_filled_in_is_refused(rules_copy, name):
    _summary_at(rules_copy, name, 140)
    [error] = _errors(rules_copy)
    assert error.key.endswith(".summary") and "limit is 139" in error.message


@pytest.mark.parametrize("name", sorted(WIDEST))
def test_a_summary_that_fits_at_its_widest_is_shown_whole(rules_copy, name):
    from service.cards import render
    from service.engine.casetests import run_all

    _summary_at(rules_copy, name, 139)
    ruleset = load_ruleset(rules_copy)
    [result] = [r for r in run_all(ruleset) if r.case_id == "no-onset-date"]
    [card] = [c for c in render(result.evaluation, patient_id="p").body()["cards"]
              if c["source"]["topic"]["code"] == "documentation-gap"]
    assert WIDEST[name] in card["summary"] and len(card["summary"]) == 139
    assert "…" not in card["summary"]


@pytest.mark.parametrize("name", ["aa-extra.yaml", "zz-extra.yaml"])
def test_a_header_key_set_again_in_another_file_is_the_other_files_error(rules_copy, name):
    """The main file (the one naming the rule set) keeps its own; the file read first or last
    that sets it again is the one to fix."""
    extra = rules_copy / name
    extra.write_text('parameters:\n  imaging_wait: {title: "Imaging wait", value: 4w}\n',
                     encoding="utf-8")
    [error] = _errors(rules_copy)
    assert (error.file, error.key) == (str(extra), "parameters")
    assert "ruleset.yaml" in error.message
