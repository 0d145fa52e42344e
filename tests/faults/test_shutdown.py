"""Graceful shutdown: Kubernetes waits longer than the pause before SIGTERM plus the time gunicorn
gives in-flight calls, so no call is cut off by SIGKILL."""

from __future__ import annotations

import yaml

from service.config import PROJECT_ROOT
from service.server import GRACEFUL_TIMEOUT_S

DEPLOYMENT = PROJECT_ROOT / "deploy" / "deployment.yaml"


def test_grace_period_covers_the_pre_stop_pause_and_the_drain() -> None:
    pod = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    [container] = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause_s = int(command[1])
    assert pause_s > 0
    assert pod["terminationGracePeriodSeconds"] > pause_s + GRACEFUL_TIMEOUT_S
