"""Hot reload against a real ``spinehip serve`` process: a bad edit leaves the old set serving."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from service import fixtures
from service.cdshooks.response import EXTENSION_KEY
from service.config import PROJECT_ROOT
from tests.support.processes import running, spinehip_env, start_spinehip
from tests.support.rules import edit, hook_ruleset_lines

TOKEN = "reload-test-admin-token"
REQUEST = PROJECT_ROOT / "fixtures" / "requests" / "s01-sciatica-8-weeks.json"


@pytest.fixture
def served_rules(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    env = spinehip_env(SPINEHIP_MODE="development", SPINEHIP_RULES_DIR=str(rules),
                       SPINEHIP_ADMIN_TOKEN=TOKEN, DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}")
    with running(start_spinehip(env, tmp_path)) as served:
        yield served.base_url, rules


def _version_served(url: str) -> str:
    body = fixtures.load_request(REQUEST, datetime.now(UTC))
    reply = requests.post(f"{url}/cds-services/spinehip-patient-view", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert any(c["source"]["topic"]["code"] == "spine-pattern-mri" for c in answer["cards"])
    return answer["extension"][EXTENSION_KEY]["rulesetVersion"]


def _reload(url: str, token: str = TOKEN) -> requests.Response:
    return requests.post(f"{url}/admin/rules/reload",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_bad_edit_is_rejected_and_the_old_rules_keep_serving(served_rules):
    url, rules = served_rules
    before = _version_served(url)
    broken = rules / "rules" / "r05-spine-pattern-mri.yaml"
    edit(broken, "    selection: at-most-one", "    selecton: at-most-one")

    reply = _reload(url)
    assert reply.status_code == 422
    [error] = reply.json()["errors"]
    assert error["file"] == str(broken) and error["line"] > 1
    assert reply.json()["version"] == before
    assert _version_served(url) == before

    edit(broken, "    selecton: at-most-one", "    selection: at-most-one")
    edit(rules / "ruleset.yaml", "version: 2026.11.0", "version: 2026.11.1")
    reply = _reload(url)
    assert reply.status_code == 200 and reply.json()["reloaded"] is True
    after = _version_served(url)
    assert after.startswith("2026.11.1+") and after != before


def test_reload_needs_the_admin_token(served_rules):
    url, _ = served_rules
    assert _reload(url, token="wrong").status_code == 401


def test_sighup_reloads_every_worker_and_a_bad_set_keeps_the_old_one(tmp_path):
    """SIGHUP to the gunicorn master reaches the rule registry of each of several workers."""
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    env = spinehip_env(SPINEHIP_MODE="development", SPINEHIP_RULES_DIR=str(rules),
                       SPINEHIP_RULES_WATCH="0", DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}")

    def wait_for(predicate) -> None:
        deadline = time.monotonic() + 15
        while not predicate():
            assert time.monotonic() < deadline, "reload did not take effect"
            time.sleep(0.3)

    with running(start_spinehip(env, tmp_path, workers=2)) as served:
        url = served.base_url

        def versions_served() -> set[str]:
            # fresh connections, so both workers are asked
            return {_version_served(url) for _ in range(12)}

        before = versions_served()
        assert len(before) == 1

        edit(rules / "ruleset.yaml", "version: 2026.11.0", "verson: 2026.11.0")
        served.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "lastError" in requests.get(f"{url}/readyz", timeout=5).json()["rules"])
        assert versions_served() == before
        assert served.process.poll() is None

        edit(rules / "ruleset.yaml", "verson: 2026.11.0", "version: 2026.11.7")
        served.process.send_signal(signal.SIGHUP)
        wait_for(lambda: all(v.startswith("2026.11.7+") for v in versions_served()))


def _workers(master_pid: int) -> set[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_worker_replaced_while_the_files_are_bad_boots_on_the_last_good_rules(tmp_path):
    """A crashed worker is replaced from the master's valid rule set; the server stays up."""
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    env = spinehip_env(SPINEHIP_MODE="development", SPINEHIP_RULES_DIR=str(rules),
                       SPINEHIP_RULES_WATCH="0", DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}")
    with running(start_spinehip(env, tmp_path)) as served:
        before = _version_served(served.base_url)
        edit(rules / "ruleset.yaml", "version: 2026.11.0", "verson: 2026.11.0")
        (worker,) = _workers(served.process.pid)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (_workers(served.process.pid) - {worker}):
            assert time.monotonic() < deadline, "no replacement worker"
            time.sleep(0.2)
        served.wait_until_answering()
        assert _version_served(served.base_url) == before
        assert served.process.poll() is None
        status = requests.get(f"{served.base_url}/readyz", timeout=5).json()["rules"]
        assert "lastError" in status  # the replacement saw the bad files and said so


def _assert_refused_for_the_hooks(errors: list[dict]) -> None:
    """One error per hook file, located at its ``ruleset:`` line."""
    located = {(Path(e["file"]).name, e["line"]) for e in errors if e.get("key") == "ruleset"}
    assert located == {(path.name, line) for path, line in hook_ruleset_lines().items()}, errors


def _assert_summed_up_for_the_hooks(last_error: dict) -> None:
    """/readyz: the count of those errors and the first, named without its directory."""
    lines = {(path.name, line) for path, line in hook_ruleset_lines().items()}
    assert last_error["count"] == len(lines), last_error
    assert (last_error["first"]["file"], last_error["first"]["line"]) in lines, last_error


def test_a_reload_renaming_the_rule_set_is_refused_at_each_hook_file(served_rules):
    """The hooks name the rule set they were written for; a set that renames itself would answer
    them with rules they were not written for, so the last good set keeps serving."""
    url, rules = served_rules
    before = _version_served(url)
    edit(rules / "ruleset.yaml", "ruleset: spine-hip", "ruleset: spine-hip-next")
    reply = _reload(url)
    assert reply.status_code == 422, reply.text
    _assert_refused_for_the_hooks(reply.json()["errors"])
    assert reply.json()["version"] == before
    assert _version_served(url) == before
    _assert_summed_up_for_the_hooks(requests.get(f"{url}/readyz", timeout=5).json()["rules"]["lastError"])

    edit(rules / "ruleset.yaml", "ruleset: spine-hip-next", "ruleset: spine-hip")
    edit(rules / "ruleset.yaml", "version: 2026.11.0", "version: 2026.11.2")
    reply = _reload(url)
    assert reply.status_code == 200 and reply.json()["reloaded"] is True, reply.text
    assert _version_served(url).startswith("2026.11.2+")
    assert "lastError" not in requests.get(f"{url}/readyz", timeout=5).json()["rules"]


def test_the_file_watch_refuses_a_renamed_rule_set_and_takes_the_matching_one(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    env = spinehip_env(SPINEHIP_MODE="development", SPINEHIP_RULES_DIR=str(rules),
                       SPINEHIP_RULES_WATCH="0.2", DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}")

    def rules_status(url: str) -> dict:
        return requests.get(f"{url}/readyz", timeout=5).json()["rules"]

    def wait_for(predicate) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, "the file watch did not act"
            time.sleep(0.3)

    with running(start_spinehip(env, tmp_path)) as served:
        url = served.base_url
        before = _version_served(url)
        edit(rules / "ruleset.yaml", "ruleset: spine-hip", "ruleset: another-set")
        wait_for(lambda: "lastError" in rules_status(url))
        _assert_summed_up_for_the_hooks(rules_status(url)["lastError"])
        assert _version_served(url) == before

        edit(rules / "ruleset.yaml", "ruleset: another-set", "ruleset: spine-hip")
        edit(rules / "ruleset.yaml", "version: 2026.11.0", "version: 2026.11.3")
        wait_for(lambda: "lastError" not in rules_status(url))
        assert _version_served(url).startswith("2026.11.3+")
