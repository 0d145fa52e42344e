"""The ``spinehip`` commands a new user and an admin type first, through the real entry point.

The admin tools must read the same rule directory the server reads (``SPINEHIP_RULES_DIR``), so
"ok" means the server will accept the set; ``evaluate`` answers with the service asked for and
says clearly what is wrong with its arguments, never with a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.cli import main
from service.config import PROJECT_ROOT
from tests.support.rules import edit

REQUEST = PROJECT_ROOT / "fixtures" / "requests" / "s01-sciatica-8-weeks.json"
BUNDLE = PROJECT_ROOT / "fixtures" / "patients" / "s01-sciatica-8-weeks.json"
AT = "2026-06-01T12:00:00Z"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def spinehip(monkeypatch, capsys):
    """Run ``spinehip ARGS`` in ``cwd`` with only ``env`` as its SPINEHIP_* settings."""

    def run(*args: str, cwd: Path, **env: str) -> Done:
        for name in [n for n in os.environ if n.startswith("SPINEHIP_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


@pytest.fixture
def site_rules(tmp_path: Path) -> Path:
    """A site's own copy of the rules, distinguishable by its version."""
    rules = tmp_path / "site-rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    main = rules / "ruleset.yaml"
    text = main.read_text()
    version_line = next(line for line in text.splitlines() if line.startswith("version:"))
    main.write_text(text.replace(version_line, "version: 9.9.9-site"))
    return rules


@pytest.fixture
def broken_rules(site_rules: Path) -> Path:
    (site_rules / "rules" / "r99-typo.yaml").write_text("rules:\n  - id: R99\n    whem: ces_sign\n")
    return site_rules


@pytest.mark.parametrize("command", [["check"], ["test"], ["explain", str(BUNDLE), "--at", AT]])
def test_rules_commands_read_the_servers_rule_directory(spinehip, command, site_rules, tmp_path) -> None:
    done = spinehip("rules", *command, cwd=tmp_path, SPINEHIP_RULES_DIR=str(site_rules))
    assert done.returncode == 0, done.stderr
    if command[0] != "test":
        assert "9.9.9-site+" in done.stdout


@pytest.mark.parametrize("command", [["check"], ["test"], ["explain", str(BUNDLE)]])
def test_rules_commands_refuse_the_set_the_server_would_refuse(
    spinehip, command, broken_rules, tmp_path
) -> None:
    done = spinehip("rules", *command, cwd=tmp_path, SPINEHIP_RULES_DIR=str(broken_rules))
    assert done.returncode == 1
    assert "r99-typo.yaml" in done.stderr and "Traceback" not in done.stderr


def test_rules_test_names_each_case_by_its_id(spinehip, site_rules, tmp_path) -> None:
    edit(site_rules / "rules" / "r03-serious-pathology.yaml", "fever-day31.json\n        absent:",
         "fever-day31.json\n        expect:")
    done = spinehip("rules", "test", cwd=tmp_path, SPINEHIP_RULES_DIR=str(site_rules))
    assert done.returncode == 1
    failed = "  FAIL fever-day-31-outside-window: fever 31 days ago is outside the 30-day window\n"
    assert failed in done.stdout
    assert "  PASS fever-day-5: fever 5 days ago with back pain\n" in done.stdout


def test_rules_test_says_which_rules_run_in_shadow(spinehip, site_rules, tmp_path) -> None:
    """A case expecting a shadow rule passes, yet no clinician sees its card: the run says so."""
    edit(site_rules / "rules" / "r01-cauda-equina.yaml", "    red_flag: true\n",
         "    red_flag: true\n    mode: shadow\n")
    done = spinehip("rules", "test", cwd=tmp_path, SPINEHIP_RULES_DIR=str(site_rules))
    headers = {line.split(" ")[0]: line for line in done.stdout.splitlines() if not line.startswith(" ")}
    assert "shadow: evaluated, no card shown" in headers["cauda-equina"]
    assert "shadow" not in headers["serious-pathology"]


def test_rules_option_wins_over_the_environment(spinehip, broken_rules, tmp_path) -> None:
    done = spinehip("rules", "check", "--rules", str(PROJECT_ROOT / "rules"), cwd=tmp_path,
                    SPINEHIP_RULES_DIR=str(broken_rules))
    assert done.returncode == 0, done.stderr
    assert "9.9.9-site" not in done.stdout


def test_evaluate_answers_with_the_service_asked_for(spinehip, tmp_path) -> None:
    done = spinehip("evaluate", str(REQUEST), "--at", AT, "--service", "spinehip-patient-view",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cards"]


def test_evaluate_with_another_hooks_service_refuses_as_the_api_does(spinehip, tmp_path) -> None:
    """A patient-view request sent to the encounter-start service: the API answers 400 on `hook`."""
    done = spinehip("evaluate", str(REQUEST), "--at", AT, "--service", "spinehip-encounter-start",
                    cwd=tmp_path)
    assert done.returncode == 1
    outcome = json.loads(done.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "spinehip-encounter-start" in json.dumps(outcome) and "hook" in json.dumps(outcome)


def test_evaluate_rejects_an_unknown_service_id_naming_the_real_ones(spinehip, tmp_path) -> None:
    done = spinehip("evaluate", str(REQUEST), "--at", AT, "--service", "patient-view", cwd=tmp_path)
    assert done.returncode == 2
    assert "patient-view" in done.stderr and "spinehip-patient-view" in done.stderr
    assert "Traceback" not in done.stderr and not done.stdout


def test_evaluate_names_a_missing_request_file_without_a_traceback(spinehip, tmp_path) -> None:
    done = spinehip("evaluate", str(tmp_path / "no-such.json"), cwd=tmp_path)
    assert done.returncode == 2
    assert "no-such.json" in done.stderr and "Traceback" not in done.stderr


def test_evaluate_names_a_request_file_that_is_not_json(spinehip, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = spinehip("evaluate", str(bad), cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert "Traceback" not in done.stderr
    assert "bad.json" in done.stderr or "JSON" in (done.stdout + done.stderr)


def _renamed(rules: Path, name: str) -> Path:
    edit(rules / "ruleset.yaml", "ruleset: spine-hip\n", f"ruleset: {name}\n")
    return rules


def _hooks_for(tmp_path: Path, name: str) -> Path:
    hooks = tmp_path / "site-hooks"
    shutil.copytree(PROJECT_ROOT / "hooks", hooks)
    for file in hooks.glob("*.yaml"):
        edit(file, "ruleset: spine-hip\n", f"ruleset: {name}\n")
    return hooks


def test_rules_check_refuses_a_set_the_served_hooks_do_not_name(spinehip, site_rules, tmp_path) -> None:
    """The server refuses a rule set its hook files do not name; so must the check."""
    rules = _renamed(site_rules, "spine-hip-v2")
    done = spinehip("rules", "check", cwd=tmp_path, SPINEHIP_RULES_DIR=str(rules))
    assert done.returncode == 1 and "ok:" not in done.stdout
    for hook in ("patient-view", "order-select", "order-sign", "encounter-start"):
        assert f"{hook}.yaml:" in done.stderr
    assert "`spine-hip`" in done.stderr and "spine-hip-v2" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("how", ["option", "environment"])
def test_rules_check_reads_the_hooks_the_server_would(spinehip, site_rules, tmp_path, how) -> None:
    rules, hooks = _renamed(site_rules, "spine-hip-v2"), _hooks_for(tmp_path, "spine-hip-v2")
    args, env = (["--hooks", str(hooks)], {}) if how == "option" else ([], {"SPINEHIP_HOOKS_DIR": str(hooks)})
    done = spinehip("rules", "check", *args, cwd=tmp_path, SPINEHIP_RULES_DIR=str(rules), **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: spine-hip-v2 9.9.9-site+")
    # The bundled hooks still name `spine-hip`: the option wins over them.
    if how == "option":
        assert spinehip("rules", "check", cwd=tmp_path, SPINEHIP_RULES_DIR=str(rules)).returncode == 1


def test_rules_check_names_a_broken_hook_file(spinehip, tmp_path) -> None:
    hooks = _hooks_for(tmp_path, "spine-hip")
    edit(hooks / "patient-view.yaml", "hook: patient-view\n", "hook: patient-veiw\n")
    done = spinehip("rules", "check", "--hooks", str(hooks), cwd=tmp_path)
    assert done.returncode == 1
    assert "patient-view.yaml:" in done.stderr and "Traceback" not in done.stderr
