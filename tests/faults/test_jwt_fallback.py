"""The JWT replay check while the database cannot take a write: a per-process cache of spent
ids stands in (a replay is still refused), or, when so configured, the call is refused with 503."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from service.config import Settings
from tests.support.app import make_app
from tests.support.databases import sqlite_locked
from tests.support.security import bearer


def service(settings: Settings, tmp_path: Path, **changes: object):
    app = make_app(dataclasses.replace(settings, journal_dir=tmp_path / "journal", **changes))
    return app, app.test_client()


@pytest.mark.parametrize("locked", [False, True], ids=["database up", "database locked"])
def test_a_replayed_token_is_refused_whether_or_not_the_database_answers(
    production_settings: Settings, make_token, tmp_path: Path, locked: bool
) -> None:
    app, client = service(production_settings, tmp_path)
    token = make_token()
    try:
        if locked:
            with sqlite_locked(tmp_path / "store.db"):
                first = client.get("/cds-services", headers=bearer(token))
                again = client.get("/cds-services", headers=bearer(token))
                fresh = client.get("/cds-services", headers=bearer(make_token()))
        else:
            first = client.get("/cds-services", headers=bearer(token))
            again = client.get("/cds-services", headers=bearer(token))
            fresh = client.get("/cds-services", headers=bearer(make_token()))
    finally:
        app.extensions["spinehip"].store.close()
    assert (first.status_code, again.status_code, fresh.status_code) == (200, 401, 200)


def test_refuse_mode_answers_503_naming_the_database(
    production_settings: Settings, make_token, tmp_path: Path
) -> None:
    app, client = service(production_settings, tmp_path, jti_fallback="refuse")
    try:
        before = client.get("/cds-services", headers=bearer(make_token()))
        with sqlite_locked(tmp_path / "store.db"):
            during = client.get("/cds-services", headers=bearer(make_token()))
    finally:
        app.extensions["spinehip"].store.close()
    assert before.status_code == 200
    assert during.status_code == 503
    issue = during.get_json()["issue"][0]
    assert issue["expression"] == ["database"]
    assert "JWT replay check" in issue["diagnostics"]
