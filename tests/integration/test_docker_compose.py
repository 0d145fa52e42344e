"""docker-compose.yml and the Dockerfile agree with the service they run.

Docker is not available where the suite runs, so these tests read the files and check them
against the code: the environment the service reads, the port it serves, the health endpoint it
has, the command line it accepts and the database it connects to.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fhir_server_process import LocalFhirServer
from ruamel.yaml import YAML

from service.cli import build_parser, main
from service.config import PROJECT_ROOT, Settings
from tests.support.app import make_app

LONG_RUNNING = ("spinehip", "hapi", "postgres")


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load((PROJECT_ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # Join continuation lines so each instruction is one line.
    return (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def _instructions(dockerfile: str, name: str) -> list[str]:
    return [
        line.split(None, 1)[1]
        for line in dockerfile.splitlines()
        if line.strip() and line.split(None, 1)[0].upper() == name
    ]


def _image_env(dockerfile: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in _instructions(dockerfile, "ENV"):
        for pair in shlex.split(instruction):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def _published(service: dict) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port; no address = every interface."""
    out = []
    for mapping in service.get("ports", []):
        *address, host, container = str(mapping).split(":")
        out.append((address[0] if address else "0.0.0.0", int(host), int(container)))
    return out


def _port_mapping(service: dict) -> dict[int, int]:
    """Host port -> container port."""
    return {host: container for _, host, container in _published(service)}


def test_development_mode_and_unauthenticated_hapi_listen_on_loopback_only(services: dict) -> None:
    assert services["spinehip"]["environment"]["SPINEHIP_MODE"] == "development"
    published = [p for s in services.values() for p in _published(s)]
    assert published, "compose publishes the service and HAPI on the host"
    assert {address for address, _, _ in published} == {"127.0.0.1"}


def _probe_url(healthcheck: dict) -> str:
    command = " ".join(healthcheck["test"])
    match = re.search(r"https?://[^'\" ]+", command)
    assert match, f"the health check probes no URL: {command}"
    return match.group(0)


def test_every_long_running_container_has_a_health_check(services: dict) -> None:
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 3 and check["interval"], name
    # the loader runs the service image, whose HEALTHCHECK would probe a port nobody serves there
    assert services["fixtures-loader"]["healthcheck"] == {"disable": True}


def test_images_are_pinned(services: dict) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert re.fullmatch(r"hapiproject/hapi:v\d+\.\d+\.\d+(-\d+)?", services["hapi"]["image"])
    # the loader runs the very image the service is built into
    assert services["spinehip"]["build"] == services["fixtures-loader"]["build"] == "."
    assert services["spinehip"]["image"] == services["fixtures-loader"]["image"]


def test_hapi_serves_r4_on_host_port_8081(services: dict) -> None:
    hapi = services["hapi"]
    assert _port_mapping(hapi) == {8081: 8080}
    assert hapi["environment"]["hapi.fhir.fhir_version"] == "R4"
    # no fixed server_address: HAPI then builds its paging links from the Host the client used,
    # which keeps them on the origin the service is allowed to follow
    assert not any("server_address" in key for key in hapi["environment"])


def test_service_port_and_health_probe_match_what_the_image_serves(
    services: dict, dockerfile: str, tmp_path: Path
) -> None:
    image_env = _image_env(dockerfile)
    port = int(image_env["SPINEHIP_PORT"])
    assert image_env["SPINEHIP_HOST"] == "0.0.0.0"
    assert f"EXPOSE {port}" in dockerfile
    assert _port_mapping(services["spinehip"]) == {8080: port}

    app = make_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", demo_patients=False))
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    for probe in (_probe_url(services["spinehip"]["healthcheck"]),
                  _probe_url({"test": _instructions(dockerfile, "HEALTHCHECK")})):
        parts = urlsplit(probe)
        assert parts.port == port and parts.hostname == "127.0.0.1"
        assert parts.path in routes
        assert app.test_client().get(parts.path).status_code == 200


def test_image_runs_spinehip_serve_as_a_non_root_user(dockerfile: str) -> None:
    assert re.match(r"python:3\.11-slim\b", _instructions(dockerfile, "FROM")[0])
    users = _instructions(dockerfile, "USER")
    assert users and users[-1] not in ("root", "0")
    assert _instructions(dockerfile, "CMD")[-1] == '["spinehip", "serve"]'
    assert build_parser().parse_args(["serve"]).func.__name__ == "_serve"


def test_dockerignore_keeps_everything_the_image_copies(dockerfile: str) -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = [shlex.split(i)[:-1] for i in _instructions(dockerfile, "COPY")]
    for sources in copied:
        for source in sources:
            assert source not in ignored, source
            assert (PROJECT_ROOT / source).exists(), source


def _settings_or_refusal(env: dict[str, str]) -> Settings | str:
    """The settings, or why the service would refuse to start with this environment."""
    try:
        return Settings.from_env(env)
    except ValueError as exc:
        return str(exc)


def test_every_service_variable_is_one_the_service_reads(services: dict, dockerfile: str) -> None:
    """Each variable compose sets changes the service's settings over what the image sets."""
    image_env = _image_env(dockerfile)
    env = {k: str(v) for k, v in services["spinehip"]["environment"].items()}
    configured = Settings.from_env({**image_env, **env})
    for key in env:
        without = {**image_env, **{k: v for k, v in env.items() if k != key}}
        assert _settings_or_refusal(without) != configured, f"{key} has no effect on the service"
    # patients come from HAPI through fhirServer, not from the built-in demo data
    assert configured.demo_patients is False
    assert configured.public_base_url == "http://localhost:8080"


def test_database_url_names_the_postgres_container_and_its_credentials(services: dict) -> None:
    url = urlsplit(services["spinehip"]["environment"]["DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port or 5432) == ("postgres", 5432)
    assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    assert url.path == f"/{pg['POSTGRES_DB']}"
    assert services["spinehip"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert f"-U {pg['POSTGRES_USER']}" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_loader_is_a_valid_command_aimed_at_hapi_once_healthy(services: dict) -> None:
    loader = services["fixtures-loader"]
    args = build_parser().parse_args(loader["command"][1:])
    assert loader["command"][0] == "spinehip"
    assert (args.command, args.fixtures_command) == ("fixtures", "load")
    target = urlsplit(args.fhir)
    assert target.hostname == "hapi"
    assert target.port in _port_mapping(services["hapi"]).values()
    assert target.path == "/fhir"
    assert loader["depends_on"]["hapi"]["condition"] == "service_healthy"
    assert loader["restart"] == "no"


@pytest.mark.fhirserver
def test_loader_command_loads_every_fixture_in_the_container_environment(
    services: dict, dockerfile: str, fhir_server: LocalFhirServer,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """The loader's command and environment, aimed at the local server instead of HAPI."""
    for key in list(os.environ):
        if key.startswith("SPINEHIP_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)
    container_env = {**_image_env(dockerfile), **services["fixtures-loader"].get("environment", {})}
    for key, value in container_env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("SPINEHIP_FHIR_TOKEN", fhir_server.token)  # HAPI here needs none
    argv = list(services["fixtures-loader"]["command"][1:])
    argv[argv.index("--fhir") + 1] = fhir_server.base_url

    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    patients = sorted((PROJECT_ROOT / "fixtures" / "patients").glob("*.json"))
    assert f"{len(patients)} patient Bundles loaded" in out


def _pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version.strip()
    return pins


def _canonical(requirement: str) -> str:
    return re.split(r"[\[<>=~!; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_dependencies_get_a_cached_layer_before_the_code_is_copied(dockerfile: str) -> None:
    steps = [line.split(None, 1) for line in dockerfile.replace("\\\n", " ").splitlines()
             if line.strip() and not line.startswith("#")]
    install = next(i for i, (op, rest) in enumerate(steps) if op == "RUN" and "pip install" in rest)
    code = next(i for i, (op, rest) in enumerate(steps) if op == "COPY" and rest.startswith("service"))
    assert install < code
    copied_before = {src for op, rest in steps[:install] if op == "COPY" for src in rest.split()[:-1]}
    assert copied_before == {"pyproject.toml", "constraints.txt"}
    assert "-c constraints.txt" in steps[install][1]


def test_the_dependency_list_the_image_installs_is_pyprojects(dockerfile: str, tmp_path: Path) -> None:
    script = re.search(r'python -c "(.*?)" > requirements.txt', dockerfile).group(1)
    import shutil
    import subprocess
    import sys
    import tomllib

    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    printed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                             text=True, check=True, timeout=60).stdout.split("\n")
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert [p for p in printed if p] == project["dependencies"]


def test_the_service_is_installed_not_editable_as_a_numeric_user(dockerfile: str) -> None:
    installs = [i for i in _instructions(dockerfile, "RUN") if "pip install" in i]
    assert installs and not any(re.search(r"\s(-e|--editable)\s", i) for i in installs)
    user = _instructions(dockerfile, "USER")[-1]
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), user


def test_docker_and_the_make_venv_install_from_one_constraints_file(dockerfile: str) -> None:
    import tomllib

    pins = _pinned(PROJECT_ROOT / "constraints.txt")
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [r for extra in project["optional-dependencies"].values() for r in extra]
    wanted = [r for r in project["dependencies"] + wanted if _canonical(r) != project["name"]]
    assert not [r for r in wanted if _canonical(r) not in pins], "pin them: make constraints"
    assert "-c constraints.txt" in (PROJECT_ROOT / "Makefile").read_text()
    from importlib.metadata import version

    for requirement in project["dependencies"]:
        name = _canonical(requirement)
        assert version(name) == pins[name], f"the venv was not installed from constraints.txt: {name}"
