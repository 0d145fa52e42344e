"""Try edited rule files without serving them: validate, run the rule cases, show the impact.

The served rule files are copied to a temporary directory (as a plain tree, whatever the mount
layout), the edited files replace their namesakes there, and the copy is loaded, tested and
replayed on the demo patients against the rule set being served. Errors name the file as it is
in the served directory, so the admin sees ``rules/r05-spine-pattern-mri.yaml:12``, not a
temporary path.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TypeVar

from service.cdshooks.services import CdsService
from service.engine import RuleSet
from service.engine.casetests import CaseResult, run_all
from service.impact import Impact, Workload, replay
from service.impact.calls import draft_panel
from service.impact.sources import demo_records
from service.yamlsource import YAML_SUFFIXES, ConfigError, ConfigFileError, source_files

MAX_FILE_BYTES = 256 * 1024
MAX_SHOWN_FAILURE = 300

log = logging.getLogger(__name__)
T = TypeVar("T")


class EditRejected(ValueError):
    """An edit that is not a rule file the workbench will try (bad name, size or encoding)."""


class TrialFailed(Exception):
    """Loading or running the edited rules failed in a way no rule check reported: the edit's
    problem to show the admin (the served rules are untouched), not a server error."""


def _step(what: str, run: Callable[[], T]) -> T:
    """``run()``; any failure but located rule errors becomes TrialFailed, logged in full."""
    try:
        return run()
    except ConfigFileError:
        raise
    except Exception as exc:
        log.exception("rule trial: %s failed", what)
        detail = f"{type(exc).__name__}: {exc}"[:MAX_SHOWN_FAILURE]
        raise TrialFailed(f"{what} failed ({detail}); the served rules are unchanged") from exc


@dataclass
class Trial:
    """What an edit would do: located errors, or its case results and its impact."""

    files: tuple[str, ...]
    errors: list[ConfigError] = field(default_factory=list)
    version: str | None = None
    cases: list[CaseResult] = field(default_factory=list)
    impact: Impact | None = None

    @property
    def cases_failed(self) -> int:
        return sum(not c.passed for c in self.cases)


def served_files(rules_dir: Path) -> dict[str, Path]:
    """Logical name -> file, in any mount layout (repository tree, flat keys, ConfigMap)."""
    return {f.name: f.path for f in source_files(rules_dir)}


def rule_files(rules_dir: Path) -> list[str]:
    """The logical names of the rule files, as the edit form offers them; none while the
    directory holds a name that cannot be read (the reload reports it)."""
    try:
        return list(served_files(rules_dir))
    except ConfigFileError:
        return []


def target_path(rules_dir: Path, name: str) -> str:
    """Where an edited file goes: the existing file it names (path or unique base name)."""
    clean = PurePosixPath(name.replace("\\", "/"))
    if clean.is_absolute() or ".." in clean.parts or clean.suffix not in YAML_SUFFIXES:
        raise EditRejected(f"{name!r} is not a rule file name (relative, ending in .yaml)")
    known = rule_files(rules_dir)
    if clean.as_posix() in known:
        return clean.as_posix()
    namesakes = [k for k in known if PurePosixPath(k).name == clean.name]
    if len(namesakes) == 1:
        return namesakes[0]
    if namesakes:
        raise EditRejected(f"{clean.name} names several rule files: {', '.join(namesakes)}")
    return clean.as_posix()  # a new file, added beside the others


def _decoded(name: str, content: bytes) -> bytes:
    if len(content) > MAX_FILE_BYTES:
        raise EditRejected(f"{name} is {len(content)} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditRejected(f"{name} is not UTF-8 text (byte {exc.start})") from None
    return content


def _relocated(errors: list[ConfigError], copy: Path, served: Path) -> list[ConfigError]:
    """Errors about the copy, named as the files of the served directory."""
    files = served_files(served)
    out = []
    for error in errors:
        if error.file.startswith(str(copy) + "/"):
            logical = Path(error.file).relative_to(copy).as_posix()
            error = dataclasses.replace(error, file=str(files.get(logical, served / logical)))
        out.append(error)
    return out


def try_edit(served: RuleSet, edits: Mapping[str, bytes], *, loader: Callable[[Path], RuleSet],
             services: tuple[CdsService, ...], fixtures_dir: Path, now: datetime) -> Trial:
    """Apply ``edits`` (file name -> content) to a copy of the served rules and try the copy
    with ``loader``, the one a reload would use."""
    rules_dir = served.rules_dir
    placed = {target_path(rules_dir, name): _decoded(name, content)
              for name, content in edits.items()}
    trial = Trial(files=tuple(sorted(placed)))
    with tempfile.TemporaryDirectory(prefix="spinehip-trial-") as tmp:
        copy = Path(tmp) / rules_dir.name
        try:
            _place(copy, served_files(rules_dir), placed)
            candidate = _step("loading the edited rules", lambda: loader(copy))
        except ConfigFileError as exc:
            trial.errors = _relocated(list(exc.errors), copy, rules_dir)
            return trial
    # Case fixtures are found next to the served rules, as `spinehip rules test` finds them.
    candidate = dataclasses.replace(candidate, rules_dir=rules_dir)
    trial.version = candidate.full_version
    trial.cases = _step("running the rule cases", lambda: run_all(candidate))
    workload = Workload(old=served, new=candidate, services=services, now=now,
                        panel=draft_panel(fixtures_dir))
    trial.impact = _step("replaying the demo patients",
                         lambda: replay(workload, demo_records(fixtures_dir, now), jobs=1))
    return trial


def _place(copy: Path, served: Mapping[str, Path], placed: Mapping[str, bytes]) -> None:
    """The served files as a plain tree at ``copy``, the edited ones in their place."""
    for name, path in served.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy / name)
    for relative, content in placed.items():
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes(content)
