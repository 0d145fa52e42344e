"""The package as users install it: sdist and wheel built from this tree, installed, run elsewhere.

The wheel is built from the sdist, so a file the sdist lacks is missing from the wheel too. The
installed ``spinehip`` must serve and check the bundled hooks, rules and demo patients from any
directory, and write its SQLite file under the working directory, never into the install.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import requests

from service.config import PROJECT_ROOT
from service.engine import load_ruleset
from tests.support.processes import free_port, running, spinehip_env, start

BODY = {"hook": "patient-view", "hookInstance": "0d6f6c1e-9d7b-4c3a-8f1e-2b3c4d5e6f70",
        "context": {"userId": "Practitioner/demo", "patientId": "s01-sciatica-8-weeks"}}


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, PROJECT_ROOT, cwd=out)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory) -> Path:
    """A new venv with the wheel installed; the dependencies are borrowed from this one."""
    target = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", target, cwd=target)
    purelib = Path(run(target / "bin" / "python", "-c",
                       "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=target).strip())
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    [wheel] = dist.glob("*.whl")
    run(sys.executable, "-m", "pip", "--python", target / "bin" / "python", "install", "--no-deps",
        "--quiet", wheel, cwd=target)
    return target


def test_sdist_has_everything_a_build_and_the_demo_need(dist: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for wanted in ("LICENSE", "openapi.yaml", "hooks/patient-view.yaml", "rules/ruleset.yaml",
                   "rules/rules/r01-cauda-equina.yaml", "fixtures/patients/s01-sciatica-8-weeks.json",
                   "service/security/sandbox-trusted-clients.yaml"):
        assert wanted in names, wanted


def test_wheel_carries_the_defaults_and_license_metadata(dist: Path) -> None:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    assert "License-Expression:" in text or "License:" in text
    for wanted in ("defaults/hooks/patient-view.yaml", "defaults/rules/rules/r01-cauda-equina.yaml",
                   "defaults/fixtures/patients/s01-sciatica-8-weeks.json",
                   "defaults/fixtures/order_requests.yaml",
                   "security/sandbox-trusted-clients.yaml"):
        assert f"service/{wanted}" in names, wanted


def test_installed_rules_check_works_from_any_directory(venv: Path, tmp_path: Path) -> None:
    out = run(venv / "bin" / "spinehip", "rules", "check", cwd=tmp_path, env=spinehip_env())
    assert load_ruleset(PROJECT_ROOT / "rules").full_version in out


def test_installed_service_serves_the_bundled_defaults_and_keeps_data_in_the_workdir(
    venv: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = spinehip_env(SPINEHIP_MODE="development")
    env.pop("DATABASE_URL", None)
    argv = [str(venv / "bin" / "spinehip"), "serve", "--port", str(port), "--workers", "1"]
    server = start("installed", argv, env, tmp_path, f"http://127.0.0.1:{port}", cwd=tmp_path)
    with running(server) as served:
        assert Path(run(venv / "bin" / "python", "-c", "import service; print(service.__file__)",
                        cwd=tmp_path).strip()).is_relative_to(venv)
        response = requests.post(f"{served.base_url}/cds-services/spinehip-patient-view", json=BODY,
                                 timeout=30)
        assert response.status_code == 200 and response.json()["cards"], response.text
    assert (tmp_path / "var" / "spinehip.db").is_file()
    assert not list(venv.rglob("*.db")), "data written into the install"
