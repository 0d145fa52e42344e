"""The 6-week window edit and, independently of the tool, which demo patients it must touch.

The expected set comes from the fixture files themselves: each patient's earliest pain onset
(the ``{{now-N}}`` tokens of its Conditions) and the cards ``fixtures/expected.yaml`` expects,
never from running the impact code.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ruamel.yaml import YAML

from benchmarks.replay import copy_with_window as window_copy
from service.config import PROJECT_ROOT

RULES = PROJECT_ROOT / "rules"
FIXTURES = PROJECT_ROOT / "fixtures"
SIX_WEEKS = 42
# One evaluation time for every impact test, so the CLI, the library and the FHIR source agree.
AT = "2026-06-15T09:00:00+00:00"
RED_FLAG_TOPICS = {"cauda-equina", "progressive-neuro-deficit", "serious-pathology"}
_ONSET = re.compile(r'"onset(?:DateTime|Period)?[^"]*":\s*(?:\{[^}]*"start":\s*)?"\{\{now-(\d+)([dwy])\}\}"')
_DAYS = {"d": 1, "w": 7, "y": 365}


def copy_with_window(tmp_path: Path, days: int) -> Path:
    """A copy of the bundled rules whose 6-week window is ``days`` days."""
    return window_copy(tmp_path / f"rules-{days}d", days)


R05 = "rules/r05-spine-pattern-mri.yaml"


def r05_with_own_window(tmp_path: Path, days: int) -> Path:
    """R5's file alone, its window written as ``days`` days instead of the shared parameter:
    the one-file upload an admin makes to move R5 only."""
    text = (RULES / R05).read_text(encoding="utf-8")
    new = text.replace("{duration: back_pain_duration, ge: imaging_wait}",
                       f"{{duration: back_pain_duration, ge: {days}d}}")
    if new == text:
        raise ValueError(f"no window parameter found in {R05}")
    target = tmp_path / f"r05-{days}d" / "r05-spine-pattern-mri.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(new, encoding="utf-8")
    return target


def earliest_onset_days(bundle_file: Path) -> int | None:
    offsets = [int(n) * _DAYS[unit] for n, unit in _ONSET.findall(bundle_file.read_text())]
    return max(offsets) if offsets else None


def red_flag_patients() -> set[str]:
    cases = YAML(typ="safe").load((FIXTURES / "expected.yaml").read_text())["cases"]
    return {Path(c["patient"]).stem for c in cases
            if any(card["topic"] in RED_FLAG_TOPICS for card in c["cards"])}


def patients_between(low: int, high: int) -> set[str]:
    """Demo patients whose pain began between ``low`` (inclusive) and ``high`` days ago, whose
    cards no red flag decides: exactly those a window moved from ``low`` to ``high`` affects."""
    out = set()
    for file in sorted((FIXTURES / "patients").glob("*.json")):
        onset = earliest_onset_days(file)
        if onset is not None and low <= onset < high:
            out.add(json.loads(file.read_text())["entry"][0]["resource"]["id"])
    return out - red_flag_patients()


# A few patients on both sides of the window and one red flag: enough for the source and engine
# tests, which check that each way in gives the same answer, at a fraction of the cost.
FEW = ("gtps-day41", "s01-sciatica-8-weeks", "s08-ces-with-hip-oa", "spine-onset-day41",
       "spine-onset-day42", "spine-onset-day43")


def few_bundles(directory: Path) -> Path:
    """A directory holding the FEW patients' Bundles."""
    directory.mkdir(parents=True)
    for slug in FEW:
        shutil.copyfile(FIXTURES / "patients" / f"{slug}.json", directory / f"{slug}.json")
    return directory
