from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled rules that a test may break."""
    target = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
