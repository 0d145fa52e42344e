"""A snooze override reason's text states the snooze the service applies.

The clinician reads "do not show again for N days" on the card; the service silences the rule
for the days ``SPINEHIP_SNOOZE_REASONS`` gives that reason. The rule set writes ``{days}`` where
the text states the length, filled from the settings in force, and a text and settings that
cannot agree are refused as every rule-set error is: located, at start-up and on reload, with
the last good rules kept serving.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from flask import Flask

from service import fixtures
from service.config import PROJECT_ROOT, Settings
from service.yamlsource import ConfigFileError
from tests.support.app import make_app
from tests.support.processes import evaluate_in_process

REQUEST = PROJECT_ROOT / "fixtures" / "requests" / "s13-piriformis.json"  # one card, snooze offered
TOKEN = "snooze-text-admin-token"
SNOOZE = "snooze-30d"
TEMPLATE = f"  {SNOOZE}: Addressed already; do not show again for {{days}}"


def settings(tmp_path: Path, name: str, **env: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / name}.db",
                              "SPINEHIP_ADMIN_TOKEN": TOKEN, **env})


def rules_copy(tmp_path: Path, snooze_line: str = TEMPLATE) -> Path:
    """The bundled rules with the snooze reason's line of ruleset.yaml replaced."""
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    set_reason(rules, SNOOZE, snooze_line)
    return rules


def set_reason(rules: Path, code: str, line: str) -> int:
    """Replace the line declaring override reason ``code``; returns its line number."""
    path = rules / "ruleset.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    number = next(i for i, text in enumerate(lines) if text.startswith(f"  {code}:"))
    lines[number] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return number + 1


def line_of(rules: Path, prefix: str) -> int:
    lines = (rules / "ruleset.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.startswith(prefix))


def offered(reply_body: dict) -> dict[str, str]:
    [card] = reply_body["cards"]
    return {r["code"]: r["display"] for r in card["overrideReasons"]}


def snooze_text(app: Flask) -> str:
    body = fixtures.load_request(REQUEST, datetime.now(UTC))
    reply = app.test_client().post(f"/cds-services/spinehip-{body['hook']}", json=body)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return offered(reply.get_json())[SNOOZE]


def reload(app: Flask):
    return app.test_client().post("/admin/rules/reload",
                                  headers={"Authorization": f"Bearer {TOKEN}"})


def test_the_card_states_the_snooze_length_the_service_applies(tmp_path: Path) -> None:
    """14 days configured: the card says 14 days; unset, the default 30; one day reads "1 day"."""
    fortnight = make_app(settings(tmp_path, "a", SPINEHIP_SNOOZE_REASONS=f"{SNOOZE}=14"))
    default = make_app(settings(tmp_path, "b"))
    one = make_app(settings(tmp_path, "c", SPINEHIP_SNOOZE_REASONS=f"{SNOOZE}=1"))
    assert snooze_text(fortnight) == "Addressed already; do not show again for 14 days"
    assert snooze_text(default) == "Addressed already; do not show again for 30 days"
    assert snooze_text(one) == "Addressed already; do not show again for 1 day"


def test_a_reload_stating_days_for_a_reason_that_does_not_snooze_is_refused(tmp_path: Path) -> None:
    """The old text keeps serving and the error names the line; a good edit is then taken."""
    rules = rules_copy(tmp_path)
    app = make_app(settings(tmp_path, "store", SPINEHIP_RULES_DIR=str(rules),
                            SPINEHIP_SNOOZE_REASONS=f"{SNOOZE}=14", SPINEHIP_RULES_WATCH="0"))
    assert snooze_text(app) == "Addressed already; do not show again for 14 days"

    line = set_reason(rules, "patient-declined", "  patient-declined: Patient declined; ask in {days}")
    refused = reload(app)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    [error] = refused.get_json()["errors"]
    assert (error["file"], error["line"]) == (str(rules / "ruleset.yaml"), line)
    assert "patient-declined" in error["message"] and "{days}" in error["message"]
    assert snooze_text(app) == "Addressed already; do not show again for 14 days"

    set_reason(rules, "patient-declined", "  patient-declined: Patient declined")
    set_reason(rules, SNOOZE, f"  {SNOOZE}: Seen to; hidden for {{days}}")
    taken = reload(app)
    assert taken.status_code == 200, taken.get_data(as_text=True)
    assert snooze_text(app) == "Seen to; hidden for 14 days"


@pytest.mark.parametrize(("snooze_line", "configured", "problem"), [
    # The text states a fixed length: true only while the setting happens to match it.
    (f"  {SNOOZE}: Addressed already; do not show again for 30 days", f"{SNOOZE}=14", SNOOZE),
    # A snooze reason no card can offer: a misspelt code would silently never snooze.
    (TEMPLATE, f"{SNOOZE}=14,snooze-7d=7", "snooze-7d"),
])
def test_settings_and_texts_that_cannot_agree_stop_the_service(tmp_path: Path, snooze_line,
                                                               configured, problem) -> None:
    rules = rules_copy(tmp_path, snooze_line)
    with pytest.raises(ConfigFileError) as caught:
        make_app(settings(tmp_path, "store", SPINEHIP_RULES_DIR=str(rules),
                          SPINEHIP_SNOOZE_REASONS=configured))
    [error] = caught.value.errors
    where = f"  {SNOOZE}:" if problem == SNOOZE else "override_reasons:"
    assert (error.file, error.line) == (str(rules / "ruleset.yaml"), line_of(rules, where))
    assert problem in error.message


def test_a_declared_second_snooze_reason_states_its_own_length(tmp_path: Path) -> None:
    """The twin of the refusals: each snooze reason declared with ``{days}`` starts and gets
    its own length."""
    rules = rules_copy(tmp_path)
    path = rules / "ruleset.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        TEMPLATE, f"{TEMPLATE}\n  snooze-7d: Seen this week; hide for {{days}}"), encoding="utf-8")
    app = make_app(settings(tmp_path, "store", SPINEHIP_RULES_DIR=str(rules),
                            SPINEHIP_SNOOZE_REASONS=f"{SNOOZE}=14,snooze-7d=7"))
    reasons = app.extensions["spinehip"].rules.current.override_reasons
    assert reasons[SNOOZE] == "Addressed already; do not show again for 14 days"
    assert reasons["snooze-7d"] == "Seen this week; hide for 7 days"


def test_evaluate_command_states_the_configured_length(tmp_path: Path, monkeypatch,
                                                       capsysbinary) -> None:
    rendered = tmp_path / REQUEST.name
    rendered.write_bytes(orjson.dumps(fixtures.load_request(REQUEST, datetime.now(UTC))))
    texts = []
    for days in ("14", "30"):
        code, out = evaluate_in_process(rendered, {"SPINEHIP_SNOOZE_REASONS": f"{SNOOZE}={days}"},
                                        monkeypatch, capsysbinary)
        assert code == 0
        texts.append(offered(orjson.loads(out))[SNOOZE])
    assert texts == [f"Addressed already; do not show again for {d} days" for d in ("14", "30")]
