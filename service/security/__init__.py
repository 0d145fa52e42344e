"""Security for the CDS endpoints: client JWTs, FHIR server binding, log redaction, headers.

``init_app`` is the one entry point the app factory calls; ``fhir_server_refusal`` is called by the
FHIR fallback before any outbound request.
"""

from __future__ import annotations

import logging

import flask

from service.config import Settings, check_serving
from service.security.fhir_binding import fhir_server_refusal
from service.security.guard import RequestGate
from service.security.headers import add_security_headers
from service.security.identity import ClientIdentity
from service.security.json_limits import json_too_deep
from service.security.jwks import KeyStore
from service.security.redact import install_log_redaction
from service.security.replay import InMemoryReplayCache, ReplayCache
from service.security.trust import load_trust_config
from service.security.verifier import TokenVerifier

__all__ = [
    "ClientIdentity",
    "ReplayCache",
    "build_verifier",
    "fhir_server_refusal",
    "init_app",
    "json_too_deep",
]

log = logging.getLogger(__name__)
EXTENSION_KEY = "spinehip.security"


def build_verifier(settings: Settings, replay: ReplayCache | None = None) -> TokenVerifier | None:
    """The JWT verifier for these settings, or None in development without a trust file.

    Raises ConfigFileError for a bad trust file, so a misconfigured service fails at start-up
    rather than on the first request (production without one is refused by ``check_serving``).
    """
    if settings.trusted_clients_path is None:
        return None
    trust = load_trust_config(settings.trusted_clients_path, settings.production)
    keys = KeyStore(trust.jwks_ttl_seconds, trust.jwks_refetch_interval_seconds)
    return TokenVerifier(trust, keys, replay or InMemoryReplayCache())


def init_app(app: flask.Flask, settings: Settings, replay: ReplayCache | None = None) -> None:
    """Install redaction, the JWT gate and the hardening headers on ``app``."""
    install_log_redaction()
    check_serving(settings)
    verifier = build_verifier(settings, replay)
    if not settings.production:
        log.warning(
            "development mode: client JWTs are optional%s",
            "" if verifier else " and not checked (no SPINEHIP_TRUSTED_CLIENTS file)",
        )
    gate = RequestGate(settings, verifier)
    app.extensions[EXTENSION_KEY] = gate
    app.before_request(gate.check)
    app.after_request(lambda response: add_security_headers(response, settings))
