"""A hostile rule file sent through the admin reload is refused as any bad set is: 422 with the
located error, and the last good rules keep serving; the valid neighbour is then taken."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask

from service.config import PROJECT_ROOT, Settings
from tests.support.app import make_app

TOKEN = "hostile-reload-admin-token"
R13 = Path("rules") / "r13-documentation-gap.yaml"
R13_PAIN = "        - back_or_hip_pain\n"

# (file, text replaced, hostile text, what the error names)
HOSTILE = {
    "python-tag": (R13, '    title: "R13: documentation gap"',
                   "    title: !!python/object/apply:os.system [id]",
                   "!!python/object/apply:os.system"),
    "deep-condition": (R13, R13_PAIN, "        - " + "{not: " * 300 + "back_or_hip_pain"
                       + "}" * 300 + "\n", "levels deep"),
    "yaml-alias": (R13, R13_PAIN, "        - &pain back_or_hip_pain\n        - *pain\n", "alias"),
    "endless-duration": (Path("ruleset.yaml"), "    value: 6w", "    value: 99999999999999999999d",
                         "at most 100 years"),
    "nul-byte": (R13, '    title: "R13: documentation gap"', '    title: "R13: documentation\0gap"',
                 "#x0000"),
    "merge-key": (R13, "    precedence: 90", "    <<: {precedence: 90}", "merge key"),
    "huge-precedence": (R13, "    precedence: 90", "    precedence: 9" + "0" * 5000, "30 digits"),
    "set-tag": (R13, "    cite: [", "    cite: !!set [", "`!!set`"),
    "integer-key": (R13, "    precedence: 90", "    1: 90\n    precedence: 90", "a key must be text"),
}


def _app(tmp_path: Path) -> tuple[Flask, Path]:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'store'}.db",
                                  "SPINEHIP_ADMIN_TOKEN": TOKEN, "SPINEHIP_RULES_DIR": str(rules),
                                  "SPINEHIP_RULES_WATCH": "0"})
    return make_app(settings), rules


def _reload(app: Flask):
    return app.test_client().post("/admin/rules/reload",
                                  headers={"Authorization": f"Bearer {TOKEN}"})


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_reload_is_refused_with_the_error_and_the_old_rules_serve(tmp_path, case):
    app, rules = _app(tmp_path)
    serving = app.extensions["spinehip"].rules.current
    relative, old, hostile, named = HOSTILE[case]
    _replace(rules / relative, old, hostile)

    refused = _reload(app)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    [error] = refused.get_json()["errors"]
    assert error["file"] == str(rules / relative) and error["line"] > 1
    assert named in error["message"]
    assert refused.get_json()["version"] == serving.full_version
    assert app.extensions["spinehip"].rules.current is serving

    _replace(rules / relative, hostile, old)
    _replace(rules / "ruleset.yaml", "version: 2026.11.0", "version: 2026.11.1")
    taken = _reload(app)
    assert taken.status_code == 200, taken.get_data(as_text=True)
    assert app.extensions["spinehip"].rules.current.version == "2026.11.1"
