"""The one conftest: fixtures every test directory shares (the bundled rule set, compiled once,
and copies of it), and the plugins holding the fixtures of each kind of test, so that a fixture
is stated once and can be used from any directory."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from service.engine import RuleSet
from tests.support.rules import RULES_DIR, bundled_ruleset

# ``benchmarks/`` is a directory of the repository, not an installed package: import it from there.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

# Plugins that others import come first, so pytest rewrites their asserts.
pytest_plugins = [
    "tests.support.security",  # keys, a loopback JWK Set, signed tokens: ec_key, jwks_server, make_token, ...
    "tests.support.stores",  # stores on SQLite and PostgreSQL: store, database_url, policy, faults, ...
    "tests.support.browser",  # headless Chromium: browser
    "tests.support.fhir_servers",  # the local FHIR server and the sandbox: fhir_server, fhir_endpoint, ...
    "tests.support.hostile_service",  # a production serve and hostile FHIR servers: hostile
    "tests.support.protocol",  # an app with recorded FHIR replies: settings, app, client, fhir_mock, ...
    "tests.support.replicas",  # two production replicas on one PostgreSQL: replicas, sign, service_env, ...
    "tests.support.served",  # a development serve per module: server, server_env
]


@pytest.fixture
def ruleset() -> RuleSet:
    """The bundled rules, compiled once per run and shared read-only (as the service shares them)."""
    return bundled_ruleset()


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled rules that a test may break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


#: Directories whose tests share one server for the whole run (the hostile set-up, the local FHIR
#: server): under pytest-xdist each runs whole on one worker, so that server starts once.
RUN_WIDE_DIRECTORIES = ("tests/hostile", "tests/integration")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``make test`` runs two xdist workers with ``--dist loadscope``: each test module runs whole
    on one worker, so a server a module starts for its tests starts once, and each directory of
    RUN_WIDE_DIRECTORIES runs whole on one worker likewise."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return next((d for d in RUN_WIDE_DIRECTORIES if module.startswith(d + "/")), module)

    return ModuleScheduling(config, log)
