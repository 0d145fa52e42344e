"""``spinehip rules impact --patients URL``: the population read from a real FHIR server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from fhir_server_process import LocalFhirServer

from service.config import PROJECT_ROOT
from service.fixtures_load import load_fixtures
from tests.impact.windows import (
    AT,
    FEW,
    RULES,
    SIX_WEEKS,
    copy_with_window,
    few_bundles,
    patients_between,
)


def impact(server: LocalFhirServer, rules, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "rules", "impact", "--against", str(RULES),
         "--rules", str(rules), "--patients", server.base_url, "--at", AT, "--json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "SPINEHIP_FHIR_TOKEN": token},
    )


@pytest.mark.fhirserver
def test_patients_read_from_a_fhir_server_change_as_the_demo_patients_do(
    spare_fhir_server: LocalFhirServer, tmp_path
) -> None:
    few = tmp_path / "fixtures"
    few_bundles(few / "patients")
    load_fixtures(spare_fhir_server.base_url, token=spare_fhir_server.token, fixtures_dir=few,
                  now=datetime.fromisoformat(AT))
    copy = copy_with_window(tmp_path, 49)
    done = impact(spare_fhir_server, copy, spare_fhir_server.token)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert {c["patient"] for c in report["changes"]} == patients_between(SIX_WEEKS, 49) & set(FEW)
    assert report["patients"] == len(FEW)

    refused = impact(spare_fhir_server, copy, "not-the-token")
    assert refused.returncode == 2
    assert "401" in refused.stderr or "refused" in refused.stderr
    assert "not-the-token" not in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
