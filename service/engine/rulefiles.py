"""Reading a rule directory: every file parsed once, its top level checked, its items gathered.

Nothing here knows what a finding or a rule means. The result is each named item with the file
and position it came from, so the section compilers can report errors where the admin wrote
them. Duplicates across files are reported here, where both places are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.engine import model as m
from service.yamlsource import (
    ConfigError,
    ConfigFileError,
    Loc,
    SourceFile,
    YamlDocument,
    content_digest,
    parse_yaml,
    pydantic_errors,
    read_source,
    source_files,
)

# The bundled rules come to 98 kB; a reload must stay well inside a request's time, and
# reading takes seconds per MB (see yamlsource.MAX_FILE_BYTES).
MAX_TREE_BYTES = 2 * 1024 * 1024
SECTIONS = ("sources", "valuesets", "findings", "scores", "derived", "conditions", "orders")


@dataclass(frozen=True)
class Entry:
    """One item from one file, remembered with where it came from."""

    doc: YamlDocument
    loc: Loc
    value: Any

    def error(self, sub: Loc, message: str, hint: str = "") -> ConfigError:
        return self.doc.error((*self.loc, *sub), message, hint)

    @property
    def line(self) -> int:
        return self.doc.position(self.loc)[0]


@dataclass
class RuleFiles:
    """Everything read from a rule directory, before any item is compiled."""

    rules_dir: Path
    files: list[str] = field(default_factory=list)
    header: dict[str, Entry] = field(default_factory=dict)
    sections: dict[str, dict[str, Entry]] = field(
        default_factory=lambda: {s: {} for s in SECTIONS})
    rules: list[Entry] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    # False when some file could not be parsed: a name it may define is then unknown, so a
    # reference to a missing name says nothing and is not reported.
    complete: bool = True
    # False when the main file could not be parsed or a header key of it did not validate:
    # every other file names what the header defines (parameters, override reasons).
    header_complete: bool = True
    digest: str = ""

    def rule_ids(self) -> set[str]:
        """Ids written in the rule entries, valid or not (an invalid rule is already reported)."""
        return {e.value["id"] for e in self.rules
                if isinstance(e.value, dict) and isinstance(e.value.get("id"), str)}


def validate(doc: YamlDocument, model: type[m.Strict], raw: Any, loc: Loc
             ) -> tuple[Any, list[ConfigError]]:
    """``raw`` as ``model``, or None and the located errors."""
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, pydantic_errors(doc, exc, loc, model=model)


def read_rule_files(rules_dir: Path) -> RuleFiles:
    """Parse every rule file under ``rules_dir`` once, whatever the mount layout."""
    out = RuleFiles(rules_dir)
    try:
        sources = source_files(rules_dir)
    except ConfigFileError as exc:
        out.errors.extend(exc.errors)
        out.complete = False
        return out
    if not sources:
        out.errors.append(ConfigError(str(rules_dir), 1, 1, "", "no rule files (*.yaml) found"))
    contents = _read_all(out, sources)
    for source, content in contents:
        try:
            doc = parse_yaml(content, str(source.path))
        except ConfigFileError as exc:
            out.errors.extend(exc.errors)
            out.complete = False
            continue
        out.files.append(str(source.path))
        _gather(out, doc)
    # The main file is the one setting `ruleset`: with a file unparsed and none setting it,
    # the unparsed one may be the main file.
    if not out.complete and "ruleset" not in out.header:
        out.header_complete = False
    out.digest = content_digest(content for _, content in contents)
    return out


def _read_all(out: RuleFiles, sources: list[SourceFile]) -> list[tuple[SourceFile, bytes]]:
    """Every file's bytes, read before any is parsed so that a tree too large in all is refused
    (naming the directory, its size and the limit) without the time to parse it; reading stops
    at the limit, so memory stays bounded too."""
    read: list[tuple[SourceFile, bytes]] = []
    total = 0
    for source in sources:
        try:
            content = read_source(source.path)
        except ConfigFileError as exc:
            out.errors.extend(exc.errors)
            out.complete = False
            continue
        total += len(content)
        if total > MAX_TREE_BYTES:
            out.errors.append(ConfigError(
                str(out.rules_dir), 1, 1, "", f"the rule files come to at least {total} bytes; "
                                              f"the limit is {MAX_TREE_BYTES} bytes",
                "move what is not rules out"))
            out.complete = False
            return []
        read.append((source, content))
    return read


def _top_level(doc: YamlDocument) -> tuple[m.RuleFile | None, list[ConfigError], set[str]]:
    """The file's top level, its errors, and the keys of it written wrongly (reported). Each
    key is checked on its own and the rest still used, so one typo or one wrong value does not
    hide the file's other definitions and cascade into "unknown ..." errors elsewhere."""
    if not isinstance(doc.data, dict):
        top, errors = validate(doc, m.RuleFile, doc.data, ())
        return top, errors, set()
    errors: list[ConfigError] = []
    wrong: set[str] = set()
    for key, value in doc.data.items():
        problems = validate(doc, m.RuleFile, {key: value}, ())[1]
        errors += problems
        wrong |= {key} if problems else set()
    top, _ = validate(doc, m.RuleFile, {k: v for k, v in doc.data.items() if k not in wrong}, ())
    return top, errors, wrong & set(m.RuleFile.model_fields)


def _gather(out: RuleFiles, doc: YamlDocument) -> None:
    if doc.data is None:
        return
    top, errors, wrong = _top_level(doc)
    out.errors.extend(errors)
    if wrong & set(m.HEADER_KEYS):
        out.header_complete = False
    if wrong - set(m.HEADER_KEYS):
        out.complete = False  # a section written wrongly: the names it defines are unknown
    if top is None:
        return
    for key in m.HEADER_KEYS:
        value = getattr(top, key)
        if value is None:
            continue
        earlier = out.header.get(key)
        if earlier is None:
            out.header[key] = Entry(doc, (key,), value)
        elif top.ruleset is not None and key != "ruleset":
            # The main file (the one naming the rule set) keeps its own: the other is the slip.
            out.header[key] = Entry(doc, (key,), value)
            out.errors.append(earlier.doc.error((key,), f"`{key}` is already set in {doc.path}"))
        else:
            out.errors.append(doc.error((key,), f"`{key}` is already set in {earlier.doc.path}"))
    for section, items in out.sections.items():
        for name, raw in (getattr(top, section) or {}).items():
            entry = Entry(doc, (section, name), raw)
            if name in items:
                other = items[name]
                out.errors.append(entry.error((), f"duplicate {section} name `{name}` "
                                                  f"(first at {other.doc.path}:{other.line})"))
            else:
                items[name] = entry
    out.rules += [Entry(doc, ("rules", i), raw) for i, raw in enumerate(top.rules or [])]
