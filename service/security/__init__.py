"""Security for the CDS endpoints: client JWTs, FHIR server binding, log redaction, headers.

``init_app`` is the one entry point the app factory calls; ``fhir_server_refusal`` is called by the
FHIR fallback before any outbound request.
"""

from __future__ import annotations

import logging

import flask

from service.config import Settings
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

    Raises ConfigFileError for a bad trust file and ValueError when production has none, so a
    misconfigured service fails at start-up rather than on the first request.
    """
    if settings.trusted_clients_path is None:
        if settings.production:
            raise ValueError(
                "SPINEHIP_MODE=production requires SPINEHIP_TRUSTED_CLIENTS (the trusted-clients file)"
            )
        return None
    trust = load_trust_config(settings.trusted_clients_path, settings.production)
    keys = KeyStore(trust.jwks_ttl_seconds, trust.jwks_refetch_interval_seconds)
    return TokenVerifier(trust, keys, replay or InMemoryReplayCache())


def init_app(app: flask.Flask, settings: Settings, replay: ReplayCache | None = None) -> None:
    """Install redaction, the JWT gate and the hardening headers on ``app``."""
    install_log_redaction()
    verifier = build_verifier(settings, replay)
    if not settings.production:
        log.warning(
            "development mode: client JWTs are optional%s",
            "" if verifier else " and not checked (no SPINEHIP_TRUSTED_CLIENTS file)",
        )
    elif not settings.public_base_url:
        # aud checked against the request's own Host header would accept a token minted for
        # another service, replayed here with that service's Host.
        raise ValueError(
            "SPINEHIP_MODE=production requires SPINEHIP_PUBLIC_BASE_URL (the URL EHRs call; JWT aud "
            "is checked against it)"
        )
    gate = RequestGate(settings, verifier)
    app.extensions[EXTENSION_KEY] = gate
    app.before_request(gate.check)
    app.after_request(lambda response: add_security_headers(response, settings))
