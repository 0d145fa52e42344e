"""Loading a rule directory: parse every file, validate, check references, compile once.

The result is an immutable RuleSet with a code -> findings index, so a request only looks at
resources whose codes some value set names. All problems in all files are collected and raised
together as one ConfigFileError, each naming file, line, column, key and a hint.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.engine import model as m
from service.engine.codes import check_code, resolve_system
from service.engine.conditions import Names, Node, named_references, parse_condition
from service.yamlsource import (
    ConfigError,
    ConfigFileError,
    Loc,
    YamlDocument,
    content_digest,
    did_you_mean,
    load_yaml,
    pydantic_errors,
    source_files,
)

CodeKey = tuple[str, str]
TEMPLATE_EXTRA_NAMES = ("side",)
# A placeholder in a summary counts as this many characters when checking the 139 limit.
PLACEHOLDER_WIDTH = 6
SUMMARY_LIMIT = 139


@dataclass(frozen=True)
class CompiledFinding:
    name: str
    spec: m.Finding
    codes: frozenset[CodeKey]
    body_sites: frozenset[CodeKey] | None


@dataclass(frozen=True)
class CompiledSuggestion:
    spec: m.Suggestion
    when: Node | None


@dataclass(frozen=True)
class CompiledRule:
    spec: m.Rule
    when: Node
    suggestions: tuple[CompiledSuggestion, ...]
    file: str
    line: int

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class ScoreDef:
    name: str
    title: str
    components: tuple[tuple[m.ScoreComponent, Node], ...]


@dataclass(frozen=True)
class RuleSet:
    """A validated, compiled rule set; shared read-only between requests and threads."""

    name: str
    version: str
    content_hash: str
    title: str
    rules_dir: Path
    files: tuple[str, ...]
    eligibility: m.Eligibility
    valuesets: Mapping[str, frozenset[CodeKey]]
    displays: Mapping[CodeKey, str]
    findings: Mapping[str, CompiledFinding]
    code_index: Mapping[CodeKey, tuple[str, ...]]
    conditions: Mapping[str, Node]
    scores: Mapping[str, ScoreDef]
    durations: Mapping[str, m.DurationSinceOnset]
    reliefs: Mapping[str, m.PercentRelief]
    orders: Mapping[str, m.Order]
    sources: Mapping[str, m.Source]
    override_reasons: Mapping[str, str]
    laterality: Mapping[str, frozenset[CodeKey]]
    pama_finding: str | None
    rules: tuple[CompiledRule, ...]
    cases: tuple[tuple[CompiledRule, int, m.Case], ...] = field(default=())

    @property
    def red_flag_rules(self) -> frozenset[str]:
        """Rules whose cards nothing may silence: no snooze, ever."""
        return frozenset(r.spec.id for r in self.rules if r.spec.red_flag)

    @property
    def full_version(self) -> str:
        """The version an admin wrote plus a content hash, so an unbumped edit is still visible."""
        return f"{self.version}+{self.content_hash[:8]}"

    def rule(self, rule_id: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass
class _Entry:
    """One named item from one file, remembered with where it came from."""

    doc: YamlDocument
    loc: Loc
    value: Any


class _Loader:
    def __init__(self, rules_dir: Path):
        self.dir = rules_dir
        self.errors: list[ConfigError] = []
        self.header: dict[str, _Entry] = {}
        self.sections: dict[str, dict[str, _Entry]] = {
            s: {} for s in ("sources", "valuesets", "findings", "scores", "derived", "conditions",
                            "orders")
        }
        self.rules: list[_Entry] = []
        # Names whose definition is itself invalid: already reported, so references to them
        # are not reported again as unknown.
        self.broken: dict[str, set[str]] = {s: set() for s in (*self.sections, "rules")}
        self.contents: list[bytes] = []
        self.files: list[str] = []

    # ----------------------------------------------------------------- reading

    def read(self) -> None:
        try:
            sources = source_files(self.dir)
        except ConfigFileError as exc:
            self.errors.extend(exc.errors)
            return
        if not sources:
            self.errors.append(ConfigError(str(self.dir), 1, 1, "", "no rule files (*.yaml) found"))
        for source in sources:
            path = source.path
            try:
                self.contents.append(path.read_bytes())
                doc = load_yaml(path, str(path))
            except ConfigFileError as exc:
                self.errors.extend(exc.errors)
                continue
            except OSError as exc:
                self.errors.append(ConfigError(str(path), 1, 1, "", f"cannot read file: {exc}"))
                continue
            self.files.append(str(path))
            self._take(doc)

    def _validate(self, doc: YamlDocument, model: type[m.Strict], raw: Any, loc: Loc) -> Any:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            self.errors.extend(pydantic_errors(doc, exc, loc, model=model))
            return None

    @staticmethod
    def _salvage(data: Any) -> m.RuleFile | None:
        """The file without its unknown top-level keys, so one typo there (already reported)
        does not hide the file's definitions and cascade into "unknown ..." errors elsewhere."""
        if not isinstance(data, dict):
            return None
        known = {k: v for k, v in data.items() if k in m.RuleFile.model_fields}
        try:
            return m.RuleFile.model_validate(known)
        except ValidationError:
            return None

    def _take(self, doc: YamlDocument) -> None:
        if doc.data is None:
            return
        top = self._validate(doc, m.RuleFile, doc.data, ())
        if top is None:
            top = self._salvage(doc.data)
        if top is None:
            return
        for key in m.HEADER_KEYS:
            value = getattr(top, key)
            if value is None:
                continue
            if key in self.header:
                first = self.header[key].doc
                self.errors.append(doc.error((key,), f"`{key}` is already set in {first.path}"))
                continue
            self.header[key] = _Entry(doc, (key,), value)
        for section, items in self.sections.items():
            for name, raw in (getattr(top, section) or {}).items():
                loc = (section, name)
                if name in items:
                    other = items[name]
                    line = other.doc.position(other.loc)[0]
                    self.errors.append(doc.error(
                        loc, f"duplicate {section} name `{name}` (first at {other.doc.path}:{line})"
                    ))
                    continue
                value = self._section_item(doc, section, raw, loc)
                if value is not None:
                    items[name] = _Entry(doc, loc, value)
                else:
                    self.broken[section].add(name)
        for i, raw in enumerate(top.rules or []):
            rule = self._validate(doc, m.Rule, raw, ("rules", i))
            if rule is not None:
                self.rules.append(_Entry(doc, ("rules", i), rule))
            elif isinstance(raw, dict) and isinstance(raw.get("id"), str):
                self.broken["rules"].add(raw["id"])

    def _section_item(self, doc: YamlDocument, section: str, raw: Any, loc: Loc) -> Any:
        if section == "conditions":
            return raw
        if section == "derived":
            kind = raw.get("kind") if isinstance(raw, dict) else None
            model = m.DERIVED_KINDS.get(kind) if isinstance(kind, str) else None
            if model is None:
                self.errors.append(doc.error(
                    (*loc, "kind"), f"`kind` must be one of {list(m.DERIVED_KINDS)}",
                    did_you_mean(str(kind), m.DERIVED_KINDS),
                ))
                return None
            return self._validate(doc, model, raw, loc)
        return self._validate(doc, m.SECTION_MODELS[section], raw, loc)

    # ----------------------------------------------------------------- checking

    def _known(self, name: str, section: str) -> bool:
        return name in self.sections[section] or name in self.broken[section]

    def _ref(self, entry: _Entry, loc: Loc, name: str | None, section: str) -> bool:
        """Report ``name`` unknown in ``section`` at ``loc``; True when it exists."""
        if name is None or name in self.sections[section] or name in self.broken[section]:
            return True
        kind = section.rstrip("s").replace("valueset", "value set")
        self.errors.append(entry.doc.error(
            loc, f"unknown {kind} `{name}`", did_you_mean(name, self.sections[section])
        ))
        return False

    def _coding(self, doc: YamlDocument, loc: Loc, system: str, code: str) -> CodeKey | None:
        uri = resolve_system(system)
        if uri is None:
            self.errors.append(doc.error(
                (*loc, "system"), f"unknown code system `{system}`",
                did_you_mean(system, ["snomed", "icd10cm", "loinc", "cpt", "finding"])
                or "use snomed, icd10cm, loinc, cpt or finding",
            ))
            return None
        problem = check_code(uri, code)
        if problem:
            self.errors.append(doc.error(loc, f"bad {system} code `{code}`: {problem}"))
            return None
        return uri, code

    def valuesets(self) -> tuple[dict[str, frozenset[CodeKey]], dict[CodeKey, str]]:
        sets: dict[str, frozenset[CodeKey]] = {}
        displays: dict[CodeKey, str] = {}
        for name, entry in self.sections["valuesets"].items():
            codes: set[CodeKey] = set()
            for i, inc in enumerate(entry.value.include):
                for code, display in inc.codes.items():
                    key = self._coding(entry.doc, (*entry.loc, "include", i, "codes", code),
                                       inc.system, code)
                    if key is not None:
                        codes.add(key)
                        displays.setdefault(key, display)
            sets[name] = frozenset(codes)
        return sets, displays

    def orders(self) -> dict[str, m.Order]:
        out: dict[str, m.Order] = {}
        for name, entry in self.sections["orders"].items():
            order: m.Order = entry.value
            codings = []
            for i, coding in enumerate(order.codes):
                key = self._coding(entry.doc, (*entry.loc, "codes", i), coding.system, coding.code)
                if key is not None:
                    codings.append(coding.model_copy(update={"system": key[0]}))
            if [c.system for c in codings].count(resolve_system("cpt")) and \
                    codings[0].system != resolve_system("cpt"):
                self.errors.append(entry.doc.error((*entry.loc, "codes"),
                                                   "the CPT code must come first"))
            body = order.body_site
            if body is not None:
                key = self._coding(entry.doc, (*entry.loc, "body_site"), body.system, body.code)
                body = body.model_copy(update={"system": key[0]}) if key else None
            out[name] = order.model_copy(update={"codes": codings, "body_site": body})
        return out

    def check_templates(self, entry: _Entry, names: set[str]) -> None:
        rule: m.Rule = entry.value
        for key in ("summary", "detail"):
            text = getattr(rule, key)
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
            except ValueError as exc:
                self.errors.append(entry.doc.error((*entry.loc, key), f"bad template: {exc}",
                                                   "write literal braces as {{ and }}"))
                continue
            for f in fields:
                if f not in names:
                    self.errors.append(entry.doc.error(
                        (*entry.loc, key), f"unknown placeholder `{{{f}}}`",
                        did_you_mean(f, names) or f"known: {', '.join(sorted(names))}",
                    ))
            if key == "summary":
                filler = dict.fromkeys(fields, "x" * PLACEHOLDER_WIDTH)
                width = len(string.Formatter().format(text, **filler)) \
                    if all(f in names for f in fields) else len(text)
                if width > SUMMARY_LIMIT:
                    self.errors.append(entry.doc.error(
                        (*entry.loc, key), f"summary is {width} characters; the limit is 139",
                        "CDS Hooks clients reject 140 or more; move the rest to `detail`",
                    ))


def _precedence_errors(rules: list[_Entry]) -> list[ConfigError]:
    """Suppression must run from higher to lower precedence; a cycle is named in full."""
    errors: list[ConfigError] = []
    by_id = {e.value.id: e for e in rules}
    for entry in rules:
        for j, target in enumerate(entry.value.suppresses):
            other = by_id.get(target)
            if other is not None and other.value.precedence < entry.value.precedence:
                errors.append(entry.doc.error(
                    (*entry.loc, "suppresses", j),
                    f"`{entry.value.id}` (precedence {entry.value.precedence}) cannot suppress "
                    f"`{target}` (precedence {other.value.precedence}), which outranks it",
                    "lower numbers win; swap the precedences or remove the suppression",
                ))
    graph = {rid: [t for t in e.value.suppresses if t in by_id] for rid, e in by_id.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                entry = by_id[node]
                errors.append(entry.doc.error((*entry.loc, "suppresses"),
                                              "precedence cycle: " + " -> ".join(cycle)))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for rid in graph:
        if rid not in state:
            visit(rid, [rid])
    return errors


def load_ruleset(rules_dir: Path | str) -> RuleSet:
    """Validate and compile every ``*.yaml`` under ``rules_dir``; raise ConfigFileError if bad."""
    loader = _Loader(Path(rules_dir))
    loader.read()
    errors = loader.errors
    valuesets, displays = loader.valuesets()
    orders = loader.orders()
    header = {k: e.value for k, e in loader.header.items()}
    main_file = loader.header["ruleset"].doc.path if "ruleset" in loader.header else None
    for key in ("ruleset", "version"):
        if key not in header and loader.files:
            errors.append(ConfigError(main_file or loader.files[0], 1, 1, key,
                                      f"no file sets `{key}`", "add it to the main rule file"))

    # findings
    findings: dict[str, CompiledFinding] = {}
    for name, entry in loader.sections["findings"].items():
        spec: m.Finding = entry.value
        ok = loader._ref(entry, (*entry.loc, "valueset"), spec.valueset, "valuesets")
        ok &= loader._ref(entry, (*entry.loc, "body_site"), spec.body_site, "valuesets")
        for i, other in enumerate(spec.side_of):
            ok &= loader._ref(entry, (*entry.loc, "side_of", i), other, "findings")
            if other in loader.sections["findings"] and loader.sections["findings"][other].value.side_of:
                errors.append(entry.doc.error((*entry.loc, "side_of", i),
                                              f"`{other}` has its own `side_of`; nest one level only"))
        if ok:
            body = valuesets[spec.body_site] if spec.body_site else None
            findings[name] = CompiledFinding(name, spec, valuesets[spec.valueset], body)
    code_index: dict[CodeKey, list[str]] = {}
    for name, finding in findings.items():
        for key in finding.codes:
            code_index.setdefault(key, []).append(name)

    durations = {n: e.value for n, e in loader.sections["derived"].items()
                 if isinstance(e.value, m.DurationSinceOnset)}
    reliefs = {n: e.value for n, e in loader.sections["derived"].items()
               if isinstance(e.value, m.PercentRelief)}
    for entry in loader.sections["derived"].values():
        spec = entry.value
        refs: list[tuple[Loc, str | None]] = []
        if isinstance(spec, m.DurationSinceOnset):
            refs += [((*entry.loc, "findings", i), f) for i, f in enumerate(spec.findings)]
            refs += [((*entry.loc, "fallback", i), f) for i, f in enumerate(spec.fallback)]
        else:
            refs += [((*entry.loc, k), getattr(spec, k))
                     for k in ("procedure", "pain_score", "reported")]
        for loc, ref in refs:
            loader._ref(entry, loc, ref, "findings")

    names = Names(findings=loader.sections["findings"], conditions=loader.sections["conditions"],
                  scores=loader.sections["scores"], durations=durations, reliefs=reliefs)
    all_names: dict[str, str] = {}
    for section in ("findings", "conditions", "scores", "derived"):
        for name, entry in loader.sections[section].items():
            if name in all_names:
                errors.append(entry.doc.error(entry.loc, f"`{name}` is also a {all_names[name]}",
                                              "findings, conditions, scores and derived facts "
                                              "share one namespace"))
            all_names[name] = section

    conditions: dict[str, Node] = {}
    for name, entry in loader.sections["conditions"].items():
        node = parse_condition(entry.value, entry.loc, entry.doc, names, errors)
        if node is not None:
            conditions[name] = node
    _condition_cycles(loader, conditions, errors)

    scores: dict[str, ScoreDef] = {}
    for name, entry in loader.sections["scores"].items():
        comps = []
        for i, comp in enumerate(entry.value.components):
            node = parse_condition(comp.when, (*entry.loc, "components", i, "when"), entry.doc,
                                   names, errors)
            if node is not None:
                comps.append((comp, node))
        scores[name] = ScoreDef(name, entry.value.title, tuple(comps))

    # header references
    lat_sets: dict[str, frozenset[CodeKey]] = {}
    if "laterality" in loader.header:
        entry = loader.header["laterality"]
        for side in ("right", "left", "both"):
            vs = getattr(entry.value, side)
            if loader._ref(entry, ("laterality", side), vs, "valuesets"):
                lat_sets[side] = valuesets[vs]
    pama_finding = None
    if "pama" in loader.header:
        entry = loader.header["pama"]
        if loader._ref(entry, ("pama", "imaging_drafts"), entry.value.imaging_drafts, "findings"):
            pama_finding = entry.value.imaging_drafts
    sources = {n: e.value for n, e in loader.sections["sources"].items()}
    reasons = header.get("override_reasons") or {}

    # rules
    rule_ids: dict[str, _Entry] = {}
    for entry in loader.rules:
        rid = entry.value.id
        if rid in rule_ids:
            other = rule_ids[rid]
            errors.append(entry.doc.error((*entry.loc, "id"), f"duplicate rule id `{rid}` "
                                          f"(first at {other.doc.path}:"
                                          f"{other.doc.position((*other.loc, 'id'))[0]})"))
        else:
            rule_ids[rid] = entry
    template_names = {*scores, *durations, *reliefs, *TEMPLATE_EXTRA_NAMES}
    compiled: list[CompiledRule] = []
    cases: list[tuple[int, m.Case, _Entry]] = []
    for entry in loader.rules:
        rule: m.Rule = entry.value
        loc = entry.loc
        when = parse_condition(rule.when, (*loc, "when"), entry.doc, names, errors)
        for j, target in enumerate(rule.suppresses):
            if target not in rule_ids and target not in loader.broken["rules"]:
                errors.append(entry.doc.error((*loc, "suppresses", j), f"unknown rule `{target}`",
                                              did_you_mean(target, rule_ids)))
        suggestions = []
        for j, sug in enumerate(rule.suggest):
            sloc = (*loc, "suggest", j)
            if (sug.order is None) == (sug.delete_drafts is None):
                errors.append(entry.doc.error(sloc, "a suggestion has exactly one of `order` or "
                                                    "`delete_drafts`"))
            if sug.order is not None and not loader._known(sug.order, "orders"):
                errors.append(entry.doc.error((*sloc, "order"), f"unknown order `{sug.order}`",
                                              did_you_mean(sug.order, loader.sections["orders"])))
            if sug.delete_drafts is not None:
                loader._ref(entry, (*sloc, "delete_drafts"), sug.delete_drafts, "findings")
            node = None
            if sug.when is not None:
                node = parse_condition(sug.when, (*sloc, "when"), entry.doc, names, errors)
            suggestions.append(CompiledSuggestion(sug, node))
        for j, f in enumerate(rule.reason_from):
            loader._ref(entry, (*loc, "reason_from", j), f, "findings")
        for j, code in enumerate(rule.override_reasons):
            if code not in reasons:
                errors.append(entry.doc.error((*loc, "override_reasons", j),
                                              f"unknown override reason `{code}`",
                                              did_you_mean(code, reasons)))
        for j, src in enumerate(rule.cite):
            loader._ref(entry, (*loc, "cite", j), src, "sources")
        loader.check_templates(entry, template_names)
        for j, case in enumerate(rule.tests):
            for key in ("expect", "absent"):
                for k, rid in enumerate(getattr(case, key)):
                    if rid not in rule_ids and rid not in loader.broken["rules"]:
                        errors.append(entry.doc.error((*loc, "tests", j, key, k),
                                                      f"unknown rule `{rid}`",
                                                      did_you_mean(rid, rule_ids)))
            if case.fixture is None and not case.resources and case.age is None:
                errors.append(entry.doc.error((*loc, "tests", j),
                                              "a case needs `fixture`, `resources` or `age`"))
            cases.append((j, case, entry))
        if when is not None:
            line = entry.doc.position((*loc, "id"))[0]
            compiled.append(CompiledRule(rule, when, tuple(suggestions), entry.doc.path, line))
    errors.extend(_precedence_errors(loader.rules))

    if errors:
        raise ConfigFileError(errors)
    by_id = {r.id: r for r in compiled}
    return RuleSet(
        name=header["ruleset"],
        version=str(header["version"]),
        content_hash=content_digest(loader.contents),
        title=header.get("title") or header["ruleset"],
        rules_dir=Path(rules_dir),
        files=tuple(loader.files),
        eligibility=header.get("eligibility") or m.Eligibility(),
        valuesets=valuesets,
        displays=displays,
        findings=findings,
        code_index={k: tuple(v) for k, v in code_index.items()},
        conditions=conditions,
        scores=scores,
        durations=durations,
        reliefs=reliefs,
        orders=orders,
        sources=sources,
        override_reasons=reasons,
        laterality=lat_sets,
        pama_finding=pama_finding,
        rules=tuple(sorted(compiled, key=lambda r: (r.spec.precedence, r.id))),
        cases=tuple((by_id[e.value.id], j, case) for j, case, e in cases),
    )


def _condition_cycles(loader: _Loader, conditions: dict[str, Node],
                      errors: list[ConfigError]) -> None:
    """A named condition that (indirectly) uses itself would recurse forever at request time."""
    for name, node in conditions.items():
        seen: set[str] = set()
        frontier = named_references(node)
        while frontier:
            if name in frontier:
                entry = loader.sections["conditions"][name]
                errors.append(entry.doc.error(entry.loc, f"condition `{name}` refers to itself"))
                break
            seen |= frontier
            frontier = set().union(*(named_references(conditions[n]) for n in frontier
                                     if n in conditions)) - seen
