"""CDS services advertised by discovery, one YAML file each under ``hooks/``.

Adding a service is adding a file. A bad file stops the service from starting, with every
problem located by file and line, because an EHR must never discover a half-configured service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.cdshooks.hooks import USER_TOKENS
from service.engine import RuleSet, load_ruleset
from service.engine.hooks import HOOKS
from service.yamlsource import (
    ConfigError,
    ConfigFileError,
    YamlDocument,
    did_you_mean,
    load_yaml,
    pydantic_errors,
    source_files,
)

TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
SERVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ServiceFile(BaseModel):
    """The schema of one ``hooks/*.yaml`` file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=SERVICE_ID.pattern)
    hook: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    usageRequirements: str | None = None
    ruleset: str = Field(min_length=1)
    prefetch: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    ruleset: str
    prefetch: dict[str, str]
    usage_requirements: str | None = None
    #: Where the file names its rule set (file, line, column), for a reload to point at.
    ruleset_at: tuple[str, int, int] = ("", 1, 1)

    def discovery_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.prefetch:
            entry["prefetch"] = dict(self.prefetch)
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


def template_token_errors(hook: str, template: str) -> list[str]:
    """Problems with the ``{{...}}`` tokens of one prefetch template, under CDS Hooks 2.0."""
    spec = HOOKS[hook]
    problems = []
    for token in TOKEN.findall(template):
        if token in USER_TOKENS:
            continue
        field = token.removeprefix("context.")
        if not token.startswith("context.") or "." in field:
            problems.append(f"token `{{{{{token}}}}}` is not a CDS Hooks 2.0 prefetch token")
        elif field not in spec.token_fields:
            allowed = ", ".join(sorted(spec.token_fields))
            problems.append(f"`{field}` is not a prefetch token of {hook} (allowed: {allowed})")
    if template.startswith(("/", "http:", "https:")):
        problems.append("a prefetch template is a relative FHIR URL (no leading `/` or scheme)")
    return problems


def load_services(hooks_dir: Path, ruleset: str | None = None) -> list[CdsService]:
    """Load and check every ``*.yaml`` file; raise ConfigFileError listing all problems.

    ``ruleset``: the name of the rule set being served; a service naming another one is an
    error, since it would be answered by rules it was not written for.
    """
    errors: list[ConfigError] = []
    services: list[CdsService] = []
    seen: dict[str, str] = {}
    files = [f.path for f in source_files(hooks_dir)]
    if not files:
        raise ConfigFileError([ConfigError(str(hooks_dir), 1, 1, "", "no *.yaml service files")])
    for path in files:
        try:
            doc = load_yaml(path)
        except ConfigFileError as exc:
            errors.extend(exc.errors)
            continue
        service, problems = _service(doc)
        errors += problems
        if service is None:
            continue
        if service.id in seen:
            errors.append(doc.error(("id",), f"service id `{service.id}` already used in {seen[service.id]}"))
        seen[service.id] = str(path)
        services.append(service)
    if ruleset is not None:
        errors.extend(ruleset_mismatches(services, ruleset))
    if errors:
        raise ConfigFileError(errors)
    return services


def _hook_errors(doc: YamlDocument) -> list[ConfigError]:
    """An unknown hook, and the prefetch token problems of a known one: reported even when
    other keys are wrong, so one pass fixes all. A value of the wrong type is left to the
    schema, which names it."""
    hook, prefetch = doc.data.get("hook"), doc.data.get("prefetch")
    if not isinstance(hook, str):
        return []
    if hook not in HOOKS:
        return [doc.error(("hook",), f"unsupported hook `{hook}`", did_you_mean(hook, HOOKS))]
    if not isinstance(prefetch, dict):
        return []
    return [doc.error(("prefetch", key), problem)
            for key, template in prefetch.items()
            for problem in template_token_errors(hook, str(template))]


def _service(doc: YamlDocument) -> tuple[CdsService | None, list[ConfigError]]:
    """The service one file describes, or None, and the file's located errors."""
    if not isinstance(doc.data, dict):
        return None, [doc.error((), "a service file must be a mapping")]
    errors = _hook_errors(doc)
    try:
        parsed = ServiceFile.model_validate(doc.data)
    except ValidationError as exc:
        return None, errors + pydantic_errors(doc, exc, model=ServiceFile)
    if parsed.hook not in HOOKS:
        return None, errors
    where = doc.error(("ruleset",), "")
    return CdsService(
        id=parsed.id,
        hook=parsed.hook,
        title=parsed.title,
        description=parsed.description,
        ruleset=parsed.ruleset,
        prefetch=dict(parsed.prefetch),
        usage_requirements=parsed.usageRequirements,
        ruleset_at=(where.file, where.line, where.column),
    ), errors


def ruleset_mismatches(services: Iterable[CdsService], ruleset: str) -> list[ConfigError]:
    """A located error per service whose file names another rule set than ``ruleset``: it
    would be answered by rules it was not written for. Checked at start-up and on every reload."""
    return [ConfigError(*s.ruleset_at, "ruleset", f"rule set `{s.ruleset}` is not the one loaded",
                        f"the rules define `{ruleset}`")
            for s in services if s.ruleset != ruleset]


def rules_for(services: Iterable[CdsService], snooze_reasons: tuple[tuple[str, int], ...]
              ) -> Callable[[Path], RuleSet]:
    """The rule loader of a running service: refuses (ConfigFileError) a set the services do not
    name, and fills in the snooze lengths its settings apply. Every reload and trial uses it."""
    services = tuple(services)

    def load(rules_dir: Path) -> RuleSet:
        ruleset = load_ruleset(rules_dir, snooze_reasons)
        if errors := ruleset_mismatches(services, ruleset.name):
            raise ConfigFileError(errors)
        return ruleset

    return load
