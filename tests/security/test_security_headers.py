"""Hardening headers on every response, errors included."""

from __future__ import annotations

from service.config import Settings
from tests.support.app import make_app
from tests.support.security import bearer


def test_production_responses_carry_all_hardening_headers(production_settings, make_token) -> None:
    client = make_app(production_settings).test_client()
    for response in (
        client.get("/cds-services", headers=bearer(make_token())),
        client.get("/cds-services"),  # 401
        client.post("/cds-services/nope", data="x", headers=bearer(make_token("/cds-services/nope"))),
    ):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert headers["Cache-Control"] == "no-store"
        assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_development_has_no_hsts_and_health_is_cacheable(tmp_path) -> None:
    client = make_app(Settings(database_url=f"sqlite:///{tmp_path / 's.db'}")).test_client()
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers.get("Cache-Control") != "no-store"
