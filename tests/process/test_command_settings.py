"""The ``spinehip`` commands read a setting as the server reads it: a value the server accepts
works for every command, and one it refuses is named in a one-line error, never a traceback.

Run as real processes: logging is configured once per process, so only a fresh one shows what
an admin's shell would see.
"""

from __future__ import annotations

import subprocess

import pytest

from service.config import Settings
from tests.support.processes import SPINEHIP, spinehip_env


def rules_check(**settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SPINEHIP), "rules", "check"], env=spinehip_env(**settings),
                          capture_output=True, text=True, timeout=120)


def server_accepts(**settings: str) -> bool:
    try:
        Settings.from_env(settings)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("level", ["debug", "WARNING", "Error"])
def test_a_log_level_the_server_accepts_works_for_the_commands(level):
    assert server_accepts(SPINEHIP_LOG_LEVEL=level)
    done = rules_check(SPINEHIP_LOG_LEVEL=level)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")
    assert "Traceback" not in done.stderr


def test_a_log_level_the_server_refuses_is_named_without_a_traceback():
    assert not server_accepts(SPINEHIP_LOG_LEVEL="verbose")
    done = rules_check(SPINEHIP_LOG_LEVEL="verbose")
    assert done.returncode == 2
    assert "SPINEHIP_LOG_LEVEL" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_rules_check_judges_the_rules_with_the_snooze_reasons_in_force():
    """A snooze reason the rule set does not declare could never be offered: ``rules check``
    says so, naming the line, as the server would refuse to start; its twin is accepted."""
    refused = rules_check(SPINEHIP_SNOOZE_REASONS="snooze-30d=14,snooze-7d=7")
    assert refused.returncode == 1, refused.stdout
    assert "ruleset.yaml:" in refused.stderr and "snooze-7d" in refused.stderr
    assert "Traceback" not in refused.stderr
    accepted = rules_check(SPINEHIP_SNOOZE_REASONS="snooze-30d=14")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("ok: ")
