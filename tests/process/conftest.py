"""A real ``spinehip serve`` process (gunicorn) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import running, spinehip_env, start_spinehip


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The service as ``make run`` starts it: embedded defaults, development mode, demo patients."""
    workdir = tmp_path_factory.mktemp("serve")
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=f"sqlite:///{workdir / 'store.db'}")
    with running(start_spinehip(env, workdir, workers=2)) as served:
        yield served.base_url
