"""Named parameters: each window and threshold defined once, referred to by name everywhere.

A rule, a finding or a card text names a parameter instead of repeating its value, so an admin
who moves the imaging window from 6 weeks to 28 days changes one line and every card says
"28 days". Durations keep the unit the admin wrote (``6w`` reads "6 weeks", ``42d`` "42 days").
Each use records what the value means there; one parameter used with two meanings (the spine
window reused as the hip window) is an error, since changing it would move both.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from service.engine.model import positive_duration
from service.yamlsource import ConfigError, Loc, YamlDocument, did_you_mean

_UNIT_WORDS = {"y": "year", "w": "week", "d": "day", "h": "hour", "m": "minute"}
NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Parameter:
    """A named value; formats as written for people: ``{p}`` "6 weeks", ``{p:adj}`` "6-week"."""

    name: str
    title: str
    value: timedelta | float
    amount: float
    unit: str  # a duration unit word, or "" for a plain number

    @property
    def is_duration(self) -> bool:
        return isinstance(self.value, timedelta)

    def __format__(self, spec: str) -> str:
        number = f"{self.amount:g}"
        if not self.unit:
            return number
        if spec == "adj":
            return f"{number}-{self.unit}"
        plural = "" if self.amount == 1 else "s"
        return f"{number} {self.unit}{plural}"


@dataclass(frozen=True)
class Use:
    """Where a parameter is used and what it means there (None: card text, any meaning)."""

    name: str
    meaning: str | None
    doc: YamlDocument
    loc: Loc


def parameter(name: str, title: str, raw: Any) -> Parameter:
    """The parameter for ``raw`` (``6w``, ``14d``, ``50``); ValueError when it is neither."""
    if isinstance(raw, bool):
        raise ValueError("a parameter is a duration such as `6w` or a number")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("a number parameter must be finite")
        return Parameter(name, title, float(raw), float(raw), "")
    value = positive_duration(raw)  # raises ValueError with the accepted spellings
    amount, unit = re.fullmatch(r"\s*([+-]?\d+)\s*([ywdhm])\s*", str(raw)).groups()  # type: ignore[union-attr]
    return Parameter(name, title, value, float(amount), _UNIT_WORDS[unit])


def resolve(raw: Any, params: Mapping[str, Parameter], uses: list[Use], meaning: str,
            doc: YamlDocument, loc: Loc) -> tuple[Any, ConfigError | None]:
    """``raw`` with a parameter name replaced by its value (the use recorded); an unknown
    name is an error. Anything else is returned as it is, for the caller to validate."""
    if not isinstance(raw, str) or not NAME.fullmatch(raw.strip()):
        return raw, None
    name = raw.strip()
    if name not in params:
        return raw, doc.error(loc, f"unknown parameter `{name}`",
                              did_you_mean(name, params) or "define it under `parameters:`")
    uses.append(Use(name, meaning, doc, loc))
    return params[name].value, None


def render_text(text: str, params: Mapping[str, Parameter]) -> str:
    """``text`` with its parameter placeholders filled in; other placeholders and escaped
    braces are kept, to be filled per request. Raises ValueError for a malformed template."""
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(text):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field in params:
            out.append(format(params[field], spec or "").replace("{", "{{").replace("}", "}}"))
        else:
            conv = f"!{conversion}" if conversion else ""
            out.append("{" + field + conv + (f":{spec}" if spec else "") + "}")
    return "".join(out)


#: How a parameter may be written in text: ``{imaging_wait}`` "6 weeks", ``{imaging_wait:adj}`` "6-week".
PARAMETER_FORMATS = ("", "adj")


def placeholder_errors(text: str, params: Collection[str], doc: YamlDocument, loc: Loc,
                       per_request: Collection[str] = ()) -> list[ConfigError]:
    """An error for each placeholder of ``text`` no card could be made from, or one for a
    malformed template. A placeholder names a parameter or, in a card's summary and detail, a
    value worked out per call (``per_request``); a misspelt one gets the closest name, else
    every name. A card value is written as it is: a format or conversion (``{spine:d}``,
    ``{spine!r}``) would fail when the card is made, and a width (``{spine:>900000000}``)
    would fill memory, so neither is allowed; a parameter takes ``:adj`` only."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        return [doc.error(loc, f"bad template: {exc}", "write literal braces as {{ and }}")]
    known = {*params, *per_request}
    errors = []
    for field, spec, conversion in fields:
        written = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if field not in known:
            errors.append(doc.error(loc, f"unknown placeholder `{written}`",
                                    did_you_mean(field, known) or f"known: {', '.join(sorted(known))}"))
        elif field in params and (conversion or spec not in PARAMETER_FORMATS):
            errors.append(doc.error(loc, f"placeholder `{written}`: a parameter is written "
                                         f"`{{{field}}}` or `{{{field}:adj}}`"))
        elif field not in params and (conversion or spec):
            errors.append(doc.error(loc, f"placeholder `{written}`: a card value is written as "
                                         f"it is, `{{{field}}}`, with no format or conversion"))
    return errors


def template_uses(text: str, params: Mapping[str, Parameter], doc: YamlDocument, loc: Loc
                  ) -> list[Use]:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f in params]
    except ValueError:
        return []  # reported where the template is checked
    return [Use(f, None, doc, loc) for f in fields]


def usage_errors(params: Mapping[str, Parameter], defined: Mapping[str, tuple[YamlDocument, Loc]],
                 uses: list[Use]) -> list[ConfigError]:
    """A parameter nothing uses, or one used with two meanings, is an error."""
    errors: list[ConfigError] = []
    for name in params:
        mine = [u for u in uses if u.name == name]
        if not mine:
            doc, loc = defined[name]
            errors.append(doc.error(loc, f"parameter `{name}` is not used",
                                    "refer to it from a rule, a finding or a card text, "
                                    "or remove it"))
            continue
        meanings: dict[str, Use] = {}
        for use in mine:
            if use.meaning is not None:
                meanings.setdefault(use.meaning, use)
        if len(meanings) > 1:
            (first, a), (second, b) = list(meanings.items())[:2]
            line = a.doc.position(a.loc)[0]
            errors.append(b.doc.error(
                b.loc, f"parameter `{name}` is used with conflicting meanings: {second} here, "
                       f"{first} at {a.doc.path}:{line}",
                "define one parameter per meaning, so changing one does not move the other"))
    return errors
