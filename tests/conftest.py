"""Fixtures every test directory shares: the bundled rule set, compiled once, and copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.engine import RuleSet
from tests.support.rules import RULES_DIR, bundled_ruleset


@pytest.fixture
def ruleset() -> RuleSet:
    """The bundled rules, compiled once per run and shared read-only (as the service shares them)."""
    return bundled_ruleset()


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled rules that a test may break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target
