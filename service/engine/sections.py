"""Compiling each section of a rule set: one function per section, each returning its value and
the located errors it found, so every problem in every file is reported in one pass.

A reference to a name that some file defines, even wrongly, is not reported again: the bad
definition already is. When a file could not be parsed at all, no reference is reported as
unknown, since the missing name may well be in that file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.engine import model as m
from service.engine.codes import (
    FAMILY_MARK,
    ICD10CM,
    ICD10CM_FAMILY,
    TEXT,
    check_code,
    resolve_system,
)
from service.engine.compiled import CodeKey, CompiledFinding, ScoreDef
from service.engine.conditions import Names, Node, parse_condition
from service.engine.parameters import (
    Parameter,
    Use,
    parameter,
    placeholder_errors,
    render_text,
    resolve,
    template_uses,
)
from service.engine.rulefiles import Entry, RuleFiles, validate
from service.yamlsource import ConfigError, Loc, YamlDocument, did_you_mean

Errors = list[ConfigError]
SYSTEM_NAMES = ["snomed", "icd10cm", "loinc", "cpt", "finding"]


@dataclass(frozen=True)
class Refs:
    """Reference checks against the names the files define."""

    files: RuleFiles

    def known(self, section: str) -> Mapping[str, Any]:
        if section == "rules":
            return dict.fromkeys(self.files.rule_ids())
        return self.files.sections[section]

    def check(self, entry: Entry, sub: Loc, name: str | None, section: str) -> Errors:
        """An error when ``name`` is not defined in ``section``; none for None."""
        known = self.known(section)
        if name is None or name in known or not self.files.complete:
            return []
        kind = section.rstrip("s").replace("valueset", "value set")
        return [entry.error(sub, f"unknown {kind} `{name}`", did_you_mean(name, known))]

    def check_finding(self, entry: Entry, sub: Loc, name: str | None, source: str,
                      resource: str | None = None) -> Errors:
        """As ``check``, and the finding reads ``source`` and, given one, ``resource``: a key
        given another kind of finding would match nothing, or the wrong records (a card
        offering to delete a completed MRI report)."""
        errors = self.check(entry, sub, name, "findings")
        written = self.files.sections["findings"].get(name or "")
        if errors or written is None or not isinstance(written.value, dict):
            return errors
        reads = written.value.get("source", "record")
        if reads != source:
            return [entry.error(sub, f"`{name}` is a finding of {SOURCE_WORDS[reads]}; this key "
                                     f"takes one of {SOURCE_WORDS[source]}")]
        if resource is not None and resource not in (written.value.get("resources") or ()):
            return [entry.error(sub, f"`{name}` reads no {resource} resources; this key takes a "
                                     f"finding of {resource} resources")]
        return []


SOURCE_WORDS = {"record": "the patient record", "draft-orders": "the draft orders"}


def compile_parameters(files: RuleFiles) -> tuple[dict[str, Parameter], Errors]:
    """The named windows and thresholds, each with the unit it was written in."""
    entry = files.header.get("parameters")
    out: dict[str, Parameter] = {}
    errors: Errors = []
    for name, spec in (entry.value if entry else {}).items():
        try:
            out[name] = parameter(name, spec.title, spec.value)
        except ValueError as exc:
            errors.append(entry.error((name, "value"), f"bad parameter value: {exc}"))  # type: ignore[union-attr]
    return out, errors


def names_for_conditions(files: RuleFiles, params: Mapping[str, Parameter] | None = None) -> Names:
    """What a ``when:`` may name, from every definition written (valid or not)."""
    derived = files.sections["derived"]

    def of_kind(kind: str) -> dict[str, Entry]:
        return {n: e for n, e in derived.items()
                if isinstance(e.value, dict) and e.value.get("kind") == kind}

    return Names(findings=files.sections["findings"], conditions=files.sections["conditions"],
                 scores=files.sections["scores"], durations=of_kind("duration-since-onset"),
                 reliefs=of_kind("percent-relief"), complete=files.complete,
                 parameters=params or {})


def _coding(doc: YamlDocument, loc: Loc, system: str, code: str) -> tuple[CodeKey | None, Errors]:
    uri = resolve_system(system)
    if uri is None:
        return None, [doc.error((*loc, "system"), f"unknown code system `{system}`",
                                did_you_mean(system, SYSTEM_NAMES)
                                or "use snomed, icd10cm, loinc, cpt or finding")]
    problem = check_code(uri, code)
    if problem:
        return None, [doc.error(loc, f"bad {system} code `{code}`: {problem}")]
    return (uri, code), []


def _family(doc: YamlDocument, loc: Loc, system: str, family: str
            ) -> tuple[CodeKey | None, Errors]:
    if resolve_system(system) != ICD10CM or not ICD10CM_FAMILY.fullmatch(family):
        return None, [doc.error(loc, f"bad code family `{family}`: an ICD-10-CM category "
                                     "(`Z85`) or range (`M16.2-M16.9`)")]
    low, _, high = family.partition("-")
    shared = min(len(low), len(high)) if high else 0
    if low[:shared] > high[:shared]:  # as canonical.in_family compares: no code lies between
        return None, [doc.error(loc, f"code range `{family}` holds no code: it runs from high to "
                                     f"low", f"write `{high}-{low}`")]
    return (ICD10CM, FAMILY_MARK + family), []


# --------------------------------------------------------------------------- header


def compile_header(files: RuleFiles) -> tuple[dict[str, Any], Errors]:
    """The header keys' values; ``ruleset`` and ``version`` must be set by some file."""
    header = {k: e.value for k, e in files.header.items()}
    errors: Errors = []
    main = files.header["ruleset"].doc.path if "ruleset" in files.header else None
    for key in ("ruleset", "version"):
        if key not in header and files.files:
            errors.append(ConfigError(main or files.files[0], 1, 1, key,
                                      f"no file sets `{key}`", "add it to the main rule file"))
    return header, errors


def compile_laterality(files: RuleFiles, valuesets: Mapping[str, frozenset[CodeKey]]
                       ) -> tuple[dict[str, frozenset[CodeKey]], Errors]:
    entry = files.header.get("laterality")
    if entry is None:
        return {}, []
    refs, sets, errors = Refs(files), {}, []
    for side in ("right", "left", "both"):
        name = getattr(entry.value, side)
        errors += refs.check(entry, (side,), name, "valuesets")
        if name in valuesets:
            sets[side] = valuesets[name]
    return sets, errors


def compile_pama(files: RuleFiles, findings: Mapping[str, CompiledFinding]
                 ) -> tuple[str | None, Errors]:
    entry = files.header.get("pama")
    if entry is None:
        return None, []
    name = entry.value.imaging_drafts
    errors = Refs(files).check_finding(entry, ("imaging_drafts",), name, "draft-orders")
    return (name if name in findings else None), errors


# --------------------------------------------------------------------------- sections


def _validated(files: RuleFiles, section: str, model: type[m.Strict]
               ) -> tuple[dict[str, tuple[Entry, Any]], Errors]:
    """Each entry of ``section`` validated as ``model``; invalid ones left out, reported."""
    out: dict[str, tuple[Entry, Any]] = {}
    errors: Errors = []
    for name, entry in files.sections[section].items():
        value, problems = validate(entry.doc, model, entry.value, entry.loc)
        errors += problems
        if value is not None:
            out[name] = (entry, value)
    return out, errors


def compile_sources(files: RuleFiles) -> tuple[dict[str, m.Source], Errors]:
    items, errors = _validated(files, "sources", m.Source)
    return {name: value for name, (_, value) in items.items()}, errors


def compile_valuesets(files: RuleFiles
                      ) -> tuple[tuple[dict[str, frozenset[CodeKey]], dict[CodeKey, str]], Errors]:
    """Each value set's codes (checked: check digits, patterns) and every code's display."""
    items, errors = _validated(files, "valuesets", m.ValueSet)
    sets: dict[str, frozenset[CodeKey]] = {}
    displays: dict[CodeKey, str] = {}
    for name, (entry, spec) in items.items():
        codes: set[CodeKey] = set()
        for i, inc in enumerate(spec.include):
            for part, read in (("codes", _coding), ("families", _family)):
                for code, display in getattr(inc, part).items():
                    key, problems = read(entry.doc, (*entry.loc, "include", i, part, code),
                                         inc.system, code)
                    errors += problems
                    if key is not None:
                        codes.add(key)
                        displays.setdefault(key, display)
            codes.update((TEXT, phrase.strip().lower()) for phrase in inc.texts)
        sets[name] = frozenset(codes)
    return (sets, displays), errors


def _order(entry: Entry, order: m.Order) -> tuple[m.Order, Errors]:
    errors: Errors = []
    codings = []
    for i, coding in enumerate(order.codes):
        key, problems = _coding(entry.doc, (*entry.loc, "codes", i), coding.system, coding.code)
        errors += problems
        if key is not None:
            codings.append(coding.model_copy(update={"system": key[0]}))
    cpt = resolve_system("cpt")
    if any(c.system == cpt for c in codings) and codings[0].system != cpt:
        errors.append(entry.error(("codes",), "the CPT code must come first"))
    body = order.body_site
    if body is not None:
        key, problems = _coding(entry.doc, (*entry.loc, "body_site"), body.system, body.code)
        errors += problems
        body = body.model_copy(update={"system": key[0]}) if key else None
    return order.model_copy(update={"codes": codings, "body_site": body}), errors


def _order_note(entry: Entry, order: m.Order, params: Mapping[str, Parameter], uses: list[Use]
                ) -> tuple[m.Order, Errors]:
    """The order with the parameters its note names filled in, so the note states the value in
    force."""
    if order.note is None:
        return order, []
    uses.extend(template_uses(order.note, params, entry.doc, (*entry.loc, "note")))
    problems = placeholder_errors(order.note, params, entry.doc, (*entry.loc, "note"))
    if problems:
        return order, problems
    return order.model_copy(update={"note": render_text(order.note, params).format()}), []


def compile_orders(files: RuleFiles, params: Mapping[str, Parameter], uses: list[Use]
                   ) -> tuple[dict[str, m.Order], Errors]:
    items, errors = _validated(files, "orders", m.Order)
    out: dict[str, m.Order] = {}
    for name, (entry, spec) in items.items():
        order, problems = _order(entry, spec)
        out[name], noted = _order_note(entry, order, params, uses)
        errors += problems + noted
    return out, errors


def _finding_refs(refs: Refs, entry: Entry, spec: m.Finding) -> Errors:
    errors = refs.check(entry, ("valueset",), spec.valueset, "valuesets")
    errors += refs.check(entry, ("body_site",), spec.body_site, "valuesets")
    findings = refs.files.sections["findings"]
    for i, other in enumerate(spec.side_of):
        errors += refs.check_finding(entry, ("side_of", i), other, "record")
        raw = findings[other].value if other in findings else None
        if isinstance(raw, dict) and raw.get("side_of"):
            errors.append(entry.error(("side_of", i),
                                      f"`{other}` has its own `side_of`; nest one level only"))
    return errors


def _finding_with_parameters(entry: Entry, params: Mapping[str, Parameter], uses: list[Use]
                             ) -> tuple[Any, Errors]:
    """The raw finding with its window resolved and its title's placeholders filled in."""
    raw = entry.value
    if not isinstance(raw, dict):
        return raw, []
    raw = dict(raw)
    errors: Errors = []
    if "within" in raw:
        raw["within"], error = resolve(raw["within"], params, uses, "the look-back window of a "
                                       "finding", entry.doc, (*entry.loc, "within"))
        errors += [error] if error else []
    if isinstance(raw.get("title"), str):
        problems = placeholder_errors(raw["title"], params, entry.doc, (*entry.loc, "title"))
        errors += problems
        raw["title"] = raw["title"] if problems else render_text(raw["title"], params).format()
    return raw, errors


def compile_findings(files: RuleFiles, valuesets: Mapping[str, frozenset[CodeKey]],
                     params: Mapping[str, Parameter] | None = None, uses: list[Use] | None = None
                     ) -> tuple[dict[str, CompiledFinding], Errors]:
    """Findings with their codes resolved; a finding whose value sets are bad is left out."""
    errors: Errors = []
    items: dict[str, tuple[Entry, m.Finding]] = {}
    for name, entry in files.sections["findings"].items():
        raw, problems = _finding_with_parameters(entry, params or {}, [] if uses is None else uses)
        spec, invalid = validate(entry.doc, m.Finding, raw, entry.loc)
        errors += problems + invalid
        if spec is not None:
            items[name] = (entry, spec)
    refs = Refs(files)
    out: dict[str, CompiledFinding] = {}
    for name, (entry, spec) in items.items():
        problems = _finding_refs(refs, entry, spec)
        errors += problems
        body_ok = spec.body_site is None or spec.body_site in valuesets
        if not problems and spec.valueset in valuesets and body_ok:
            body = valuesets[spec.body_site] if spec.body_site else None
            out[name] = CompiledFinding(name, spec, valuesets[spec.valueset], body)
    return out, errors


def code_index(findings: Mapping[str, CompiledFinding]) -> dict[CodeKey, tuple[str, ...]]:
    """Code -> the findings that name it, so a request looks only at resources some rule uses."""
    index: dict[CodeKey, list[str]] = {}
    for name, finding in findings.items():
        for key in finding.codes:
            index.setdefault(key, []).append(name)
    return {k: tuple(v) for k, v in index.items()}


# What each key of a percent relief reads in the patient record.
RELIEF_RESOURCES = {"procedure": "Procedure", "pain_score": "Observation", "reported": "Observation"}


def _derived_refs(refs: Refs, entry: Entry, spec: Any) -> Errors:
    if isinstance(spec, m.DurationSinceOnset):
        slots = [(("findings", i), f, None) for i, f in enumerate(spec.findings)]
        slots += [(("fallback", i), f, None) for i, f in enumerate(spec.fallback)]
    else:
        slots = [((k,), getattr(spec, k), kind) for k, kind in RELIEF_RESOURCES.items()]
    return [e for sub, name, kind in slots
            for e in refs.check_finding(entry, sub, name, "record", kind)]


# The keys of a percent relief that may name a parameter, and whether each is a duration.
RELIEF_PARAMETERS = {"before": True, "after_min": True, "after_max": True,
                     "min_before_score": False}


def _derived_with_parameters(entry: Entry, name: str, params: Mapping[str, Parameter],
                             uses: list[Use]) -> tuple[Any, Errors]:
    """The raw percent relief with the parameters its windows and threshold name resolved."""
    raw = entry.value
    if not isinstance(raw, dict) or raw.get("kind") != "percent-relief":
        return raw, []
    raw = dict(raw)
    errors: Errors = []
    for key, is_duration in RELIEF_PARAMETERS.items():
        if key not in raw:
            continue
        value, error = resolve(raw[key], params, uses, f"`{key}` of percent relief `{name}`",
                               entry.doc, (*entry.loc, key))
        named = raw[key].strip() if value is not raw[key] else None
        if error is None and named is not None and params[named].is_duration != is_duration:
            wanted = "a duration" if is_duration else "a number"
            error = entry.error((key,), f"parameter `{named}` does not fit here: `{key}` is {wanted}")
        errors += [error] if error else []
        raw[key] = value
    return raw, errors


def compile_derived(files: RuleFiles, params: Mapping[str, Parameter], uses: list[Use]
                    ) -> tuple[
        tuple[dict[str, m.DurationSinceOnset], dict[str, m.PercentRelief]], Errors]:
    """Derived facts by kind (durations since onset, percent relief), parameters resolved."""
    errors: Errors = []
    refs = Refs(files)
    durations: dict[str, m.DurationSinceOnset] = {}
    reliefs: dict[str, m.PercentRelief] = {}
    for name, entry in files.sections["derived"].items():
        raw = entry.value
        kind = raw.get("kind") if isinstance(raw, dict) else None
        model = m.DERIVED_KINDS.get(kind) if isinstance(kind, str) else None
        if model is None:
            errors.append(entry.error(("kind",), f"`kind` must be one of {list(m.DERIVED_KINDS)}",
                                      did_you_mean(str(kind), m.DERIVED_KINDS)))
            continue
        raw, resolved = _derived_with_parameters(entry, name, params, uses)
        errors += resolved
        spec, problems = (None, []) if resolved else validate(entry.doc, model, raw, entry.loc)
        errors += problems
        if spec is None:
            continue
        errors += _derived_refs(refs, entry, spec)
        target = durations if isinstance(spec, m.DurationSinceOnset) else reliefs
        target[name] = spec
    return (durations, reliefs), errors


def check_namespace(files: RuleFiles) -> Errors:
    """Findings, conditions, scores, derived facts and parameters are named in one namespace."""
    seen: dict[str, str] = {}
    errors: Errors = []
    params = files.header.get("parameters")
    for name in (params.value if params else {}):
        seen[name] = "parameter"
    for section in ("findings", "conditions", "scores", "derived"):
        for name, entry in files.sections[section].items():
            if name in seen:
                errors.append(entry.error((), f"`{name}` is also a {seen[name]}",
                                          "findings, conditions, scores, derived facts and "
                                          "parameters share one namespace"))
            seen[name] = section
    return errors


def compile_conditions(files: RuleFiles, names: Names) -> tuple[dict[str, Node], Errors]:
    """Named conditions parsed once (how they use each other and the scores:
    ``references.reference_errors``)."""
    errors: Errors = []
    out: dict[str, Node] = {}
    for name, entry in files.sections["conditions"].items():
        node = parse_condition(entry.value, entry.loc, entry.doc, names, errors)
        if node is not None:
            out[name] = node
    return out, errors


def compile_scores(files: RuleFiles, names: Names) -> tuple[dict[str, ScoreDef], Errors]:
    items, errors = _validated(files, "scores", m.Score)
    out: dict[str, ScoreDef] = {}
    for name, (entry, spec) in items.items():
        comps = []
        for i, comp in enumerate(spec.components):
            node = parse_condition(comp.when, (*entry.loc, "components", i, "when"), entry.doc,
                                   names, errors)
            if node is not None:
                comps.append((comp, node))
        out[name] = ScoreDef(name, spec.title, tuple(comps))
    return out, errors
