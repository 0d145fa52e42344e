"""Loading a rule directory: read the files, compile each section, freeze the result.

The result is an immutable RuleSet with a code -> findings index, so a request only looks at
resources whose codes some value set names. All problems in all files are collected and raised
together as one ConfigFileError, each naming file, line, column, key and a hint. Reading is
``rulefiles``, the sections' compilers ``sections`` and ``rulesection``, the frozen types
``compiled``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from service.config import DEFAULT_SNOOZE_REASONS
from service.engine import cardtext
from service.engine import model as m
from service.engine.compiled import CodeKey, CompiledFinding, CompiledRule, RuleSet, ScoreDef
from service.engine.conditions import Names
from service.engine.parameters import usage_errors
from service.engine.reasons import compile_override_reasons
from service.engine.references import reference_errors
from service.engine.rulefiles import read_rule_files
from service.engine.rulesection import RuleContext, compile_rules
from service.engine.sections import (
    Refs,
    check_namespace,
    code_index,
    compile_conditions,
    compile_derived,
    compile_findings,
    compile_header,
    compile_laterality,
    compile_orders,
    compile_pama,
    compile_parameters,
    compile_scores,
    compile_sources,
    compile_valuesets,
    names_for_conditions,
)
from service.yamlsource import ConfigError, ConfigFileError

__all__ = ["CodeKey", "CompiledFinding", "CompiledRule", "RuleSet", "ScoreDef", "load_ruleset"]


def load_ruleset(rules_dir: Path | str,
                 snooze_reasons: tuple[tuple[str, int], ...] = DEFAULT_SNOOZE_REASONS) -> RuleSet:
    """Validate and compile every ``*.yaml`` under ``rules_dir``; raise ConfigFileError if bad.

    ``snooze_reasons``: (code, days) of each reason that silences a rule in the service that
    will serve the set (``Settings.snooze_reasons``); the reasons' texts state those days.
    """
    snooze_days = dict(snooze_reasons)
    files = read_rule_files(Path(rules_dir))
    errors: list[ConfigError] = list(files.errors)

    def take(result):  # (value, errors) -> value, errors collected
        value, problems = result
        errors.extend(problems)
        return value

    params, param_errors = compile_parameters(files)
    if not files.header_complete or param_errors:
        # Every section names the header's parameters and override reasons: until the main
        # file and each parameter read, a check elsewhere cannot tell a mistake from a
        # consequence of this one.
        raise ConfigFileError([*files.errors, *param_errors])
    header = take(compile_header(files))
    names = names_for_conditions(files, params)
    valuesets, displays = take(compile_valuesets(files))
    orders = take(compile_orders(files, params, names.uses))
    sources = take(compile_sources(files))
    findings = take(compile_findings(files, valuesets, params, names.uses))
    durations, reliefs = take(compile_derived(files, params, names.uses))
    errors += check_namespace(files)
    conditions = take(compile_conditions(files, names))
    scores = take(compile_scores(files, names))
    errors += reference_errors(files, conditions, scores)
    laterality = take(compile_laterality(files, valuesets))
    pama_finding = take(compile_pama(files, findings))
    reasons = take(compile_override_reasons(files, snooze_days))
    rules, cases = take(compile_rules(files, RuleContext(names, Refs(files),
                                                         _template_widths(names, scores),
                                                         reasons, frozenset(snooze_days))))
    if files.complete and "parameters" in files.header:
        entry = files.header["parameters"]
        defined = {n: (entry.doc, (*entry.loc, n)) for n in params}
        errors += usage_errors(params, defined, names.uses)
    if errors:
        raise ConfigFileError(errors)
    by_id = {r.id: r for r in rules}
    ruleset = RuleSet(
        name=header["ruleset"],
        version=str(header["version"]),
        content_hash=files.digest,
        title=header.get("title") or header["ruleset"],
        rules_dir=Path(rules_dir),
        files=tuple(files.files),
        eligibility=header.get("eligibility") or m.Eligibility(),
        valuesets=valuesets,
        displays=displays,
        findings=findings,
        code_index=code_index(findings),
        conditions=conditions,
        scores=scores,
        durations=durations,
        reliefs=reliefs,
        orders=orders,
        sources=sources,
        override_reasons=reasons,
        snooze_days=snooze_days,
        laterality=laterality,
        pama_finding=pama_finding,
        rules=tuple(rules),
        cases=tuple((by_id[rule_id], case) for rule_id, case in cases),
        parameters=params,
    )
    from service.engine.casetests import evaluation_errors  # it runs sets this module makes

    if errors := evaluation_errors(ruleset):
        raise ConfigFileError(errors)
    return ruleset


def _template_widths(names: Names, scores: Mapping[str, ScoreDef]) -> dict[str, int]:
    """The values a card's summary may name, worked out per call, each with its widest text."""
    widths = {"side": cardtext.widest_side()}
    widths |= dict.fromkeys(names.durations, cardtext.widest_duration())
    widths |= dict.fromkeys(names.reliefs, cardtext.widest_relief())
    for name in names.scores:  # one that did not compile is reported; measured as any number
        score = scores.get(name)
        widths[name] = (cardtext.widest_score(c.weight for c, _ in score.components) if score
                        else cardtext.WIDEST_NUMBER)
    return widths
