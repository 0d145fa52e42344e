"""The garbage collector of a serving process: settled once the app is built, and a hook call
leaves so few cycles that collecting rarely costs no memory worth counting."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.synthetic import synthetic_request
from service import heap
from service.config import Settings
from service.server import _Gunicorn
from tests.support.app import make_app

# A hook call may leave a few small cycles (Werkzeug's request environment, exceptions caught on
# the way); a request body in a cycle would be thousands of containers.
MAX_CYCLIC_PER_CALL = 50


@pytest.fixture
def gc_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.enable()


@pytest.fixture
def app(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}",
                        journal_dir=tmp_path / "journal", demo_patients=False)
    return make_app(settings)


def test_the_served_app_is_loaded_with_a_settled_heap(gc_state: None, app) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    loaded = _Gunicorn(app, app.extensions["spinehip"].settings, {}).load()
    assert loaded is app
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 10_000  # the app's objects, kept out of later collections


def test_a_hook_call_leaves_almost_no_cycles_behind(gc_state: None, app) -> None:
    client = app.test_client()
    body = synthetic_request(200, datetime.now(UTC)).body  # the benchmark's request
    for _ in range(3):  # warm-up: first calls fill caches that live on
        assert client.post("/cds-services/spinehip-patient-view", json=body).status_code == 200
    gc.collect()
    gc.disable()
    calls = 10
    for _ in range(calls):
        response = client.post("/cds-services/spinehip-patient-view", json=body)
        assert response.status_code == 200 and response.get_json()["cards"]
    unreachable = gc.collect()
    assert unreachable <= MAX_CYCLIC_PER_CALL * calls
