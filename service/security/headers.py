"""Hardening headers on every response.

The service only ever returns JSON, so a browser must never sniff it into HTML, load anything on
its behalf, or keep a copy of patient-specific advice in a shared cache.
"""

from __future__ import annotations

import flask

from service.config import Settings
from service.security.guard import is_cds_path

HSTS = "max-age=31536000; includeSubDomains"


def add_security_headers(response: flask.Response, settings: Settings) -> flask.Response:
    """Set the headers for this response; called from ``after_request``."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype and response.mimetype.endswith("json"):
        headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    if is_cds_path(flask.request.path):
        headers["Cache-Control"] = "no-store"
    if settings.production:
        headers["Strict-Transport-Security"] = HSTS
    return response
