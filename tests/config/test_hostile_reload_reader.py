"""Hostile bytes in hook files and in a reloaded rule set: located errors, a 422 that keeps the
last good rules serving, and a /readyz that stays short and names no server path."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest

from service.cdshooks.services import load_services
from service.config import PROJECT_ROOT
from service.workbench import trial
from service.yamlsource import MAX_REPORTED_ERRORS, ConfigFileError
from tests.config.test_hostile_reload import _app, _reload
from tests.workbench.test_workbench_page import csrf_of, make_client, signed_in

PATIENT_VIEW = "patient-view.yaml"
R13_NAME = "rules/r13-documentation-gap.yaml"

# hook file text replaced -> (hostile text, line, column, what the message names)
HOOK_REFUSED = {
    "hook-list": ("hook: patient-view", "hook: [patient-view]", 2, 1, "valid string"),
    "hook-mapping": ("hook: patient-view", "hook: {name: patient-view}", 2, 1, "valid string"),
    "hook-number": ("hook: patient-view", "hook: 12", 2, 1, "expected text"),
    "prefetch-list": ("prefetch:\n", "prefetch: [a]\nx_prefetch:\n", 12, 1, "valid dictionary"),
    "nul-byte": ("title: Spine", "title: Sp\0ine", 3, 10, "#x0000"),
    "merge-key": ("title: Spine or hip? Pain-source guidance", "<<: {title: 1}", 3, 1, "merge key"),
    "omap-tag": ("prefetch:\n", "prefetch: !!omap\n", 12, 11, "`!!omap`"),
    "integer-key": ("title: Spine", "1: x\ntitle: Spine", 3, 1, "a key must be text"),
}


def _hooks_copy(tmp_path: Path) -> Path:
    hooks = tmp_path / "hooks"
    shutil.copytree(PROJECT_ROOT / "hooks", hooks)
    return hooks


@pytest.mark.parametrize("case", sorted(HOOK_REFUSED))
def test_a_hostile_hook_file_is_a_located_error(tmp_path, case):
    hooks = _hooks_copy(tmp_path)
    old, new, line, column, named = HOOK_REFUSED[case]
    path = hooks / PATIENT_VIEW
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_services(hooks)
    located = [(e.file, e.line, e.column) for e in info.value.errors if named in e.message]
    assert located == [(str(path), line, column)], info.value.errors


def test_the_hook_files_as_written_load(tmp_path):
    assert len(load_services(_hooks_copy(tmp_path))) == 4


def _write_findings(rules: Path, text: str) -> Path:
    path = rules / "rules" / "r99-hostile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line", [
    ("findings:\n  x\0y: 1\n", 2),
    ("findings: {x: {<<: {title: 1, valueset: ces-signs, resources: [Observation]}}}\n", 1),
    ("findings: !!omap [a: 1]\n", 1),
    ("rules:\n  - precedence: 1" + "0" * 5000 + "\n", 2),
])
def test_a_hostile_reload_is_422_with_the_located_error_and_the_old_rules_serve(tmp_path, text, line):
    app, rules = _app(tmp_path)
    serving = app.extensions["spinehip"].rules.current
    path = _write_findings(rules, text)
    refused = _reload(app)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    [error] = refused.get_json()["errors"]
    assert (error["file"], error["line"]) == (str(path), line)
    assert app.extensions["spinehip"].rules.current is serving
    _write_findings(rules, "rules: []\n")
    assert _reload(app).status_code == 200


def test_a_reload_with_thousands_of_errors_answers_the_first_ones_and_the_count(tmp_path):
    app, rules = _app(tmp_path)
    _write_findings(rules, "findings:\n" + "".join(f"  bad_{i}: {{title: 1}}\n" for i in range(400)))
    body = _reload(app).get_json()
    assert len(body["errors"]) == MAX_REPORTED_ERRORS
    assert body["errorCount"] > MAX_REPORTED_ERRORS


def test_readyz_shows_the_count_and_first_error_named_within_the_rules_tree(tmp_path):
    app, rules = _app(tmp_path)
    _write_findings(rules, "findings:\n" + "".join(f"  bad_{i}: {{title: 1}}\n" for i in range(400)))
    assert _reload(app).status_code == 422
    ready = app.test_client().get("/readyz")
    assert len(ready.get_data()) < 2000
    last = ready.get_json()["rules"]["lastError"]
    assert last["count"] > MAX_REPORTED_ERRORS
    assert last["first"]["file"] == "rules/r99-hostile.yaml"
    assert str(tmp_path) not in ready.get_data(as_text=True)


def test_readyz_has_no_last_error_once_a_good_set_is_taken(tmp_path):
    app, rules = _app(tmp_path)
    _write_findings(rules, "findings: {x: 1}\n")
    assert _reload(app).status_code == 422
    _write_findings(rules, "rules: []\n")
    assert _reload(app).status_code == 200
    assert "lastError" not in app.test_client().get("/readyz").get_json()["rules"]


def _try_r13(client):
    page = client.get("/admin/rules").get_data(as_text=True)
    text = (PROJECT_ROOT / "rules" / "rules" / "r13-documentation-gap.yaml").read_text()
    return client.post("/admin/rules/try", data={"csrf": csrf_of(page), "path": R13_NAME,
                                                 "content": text})


def _broken(*_args, **_kwargs):
    raise TypeError("a compiler fault no rule check reported")


def test_a_trial_whose_loading_fails_unexpectedly_is_422_naming_the_failure(tmp_path):
    client = signed_in(make_client(tmp_path))
    client.application.extensions["spinehip"].rules.loader = _broken
    reply = _try_r13(client)
    assert reply.status_code == 422
    page = html.unescape(reply.get_data(as_text=True))
    assert "loading the edited rules failed (TypeError: a compiler fault" in page


def test_a_trial_whose_cases_fail_to_run_is_422_naming_the_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(trial, "run_all", _broken)
    reply = _try_r13(signed_in(make_client(tmp_path)))
    assert reply.status_code == 422
    assert "running the rule cases failed (TypeError" in html.unescape(reply.get_data(as_text=True))


def test_the_same_trial_with_working_rules_is_200(tmp_path):
    assert _try_r13(signed_in(make_client(tmp_path))).status_code == 200
