"""A hook file's ``ruleset:`` must name the rule set the service loaded.

A service written for another rule set would be answered by rules it was not written for; the
service refuses to start, naming the file and key, as it does for every configuration error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.cdshooks.services import load_services
from service.config import PROJECT_ROOT, Settings
from service.engine import load_ruleset
from service.yamlsource import ConfigFileError
from tests.support.app import make_app

HOOKS = PROJECT_ROOT / "hooks"
RULESET = load_ruleset(PROJECT_ROOT / "rules").name


def settings(tmp_path: Path, hooks_dir: Path) -> Settings:
    return Settings(hooks_dir=hooks_dir, database_url=f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def other_ruleset_hooks(tmp_path: Path) -> Path:
    hooks = tmp_path / "hooks"
    shutil.copytree(HOOKS, hooks)
    target = hooks / "order-sign.yaml"
    target.write_text(target.read_text().replace(f"ruleset: {RULESET}", "ruleset: knee-pain"))
    return hooks


def test_the_bundled_hooks_name_the_loaded_rule_set(tmp_path: Path) -> None:
    assert {s.ruleset for s in load_services(HOOKS, RULESET)} == {RULESET}
    app = make_app(settings(tmp_path, HOOKS))
    assert len(app.extensions["spinehip"].services) == 4


def test_a_hook_naming_another_rule_set_stops_the_service(tmp_path: Path, other_ruleset_hooks) -> None:
    with pytest.raises(ConfigFileError) as caught:
        make_app(settings(tmp_path, other_ruleset_hooks))
    [error] = caught.value.errors
    assert error.file.endswith("order-sign.yaml") and error.key == "ruleset"
    assert "knee-pain" in error.message and RULESET in error.hint
