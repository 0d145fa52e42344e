"""A real ``spinehip serve`` process (gunicorn) on a free loopback port, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import running, spinehip_env, start_spinehip


@pytest.fixture(scope="module")
def server_env(tmp_path_factory) -> dict[str, str]:
    """The settings the served process gets, for a command that must see what it sees."""
    workdir = tmp_path_factory.mktemp("serve")
    # These tests compare answers, not fault handling: on a loaded machine the server and a command
    # sharing one SQLite file must not turn a slow write into a degraded answer (tests/faults does).
    return {"SPINEHIP_MODE": "development", "DATABASE_URL": f"sqlite:///{workdir / 'store.db'}",
            "SPINEHIP_DB_TIMEOUT": "10", "SPINEHIP_JOURNAL_DIR": str(workdir / "journal")}


@pytest.fixture(scope="module")
def server(server_env, tmp_path_factory) -> Iterator[str]:
    """The service as ``make run`` starts it: embedded defaults, development mode, demo patients."""
    workdir = tmp_path_factory.mktemp("serve-logs")
    env = spinehip_env(**server_env)
    with running(start_spinehip(env, workdir, workers=2)) as served:
        yield served.base_url
