"""The request gate: who may call ``/cds-services``.

Production always demands a valid client JWT. Development accepts calls without one, but a token
that is present is still checked when a trust file exists, so a misconfigured client shows up
before it reaches production.
"""

from __future__ import annotations

import logging

import flask

from service.config import Settings
from service.security.identity import ClientIdentity
from service.security.verifier import TokenRejected, TokenVerifier

log = logging.getLogger(__name__)

CDS_PREFIX = "/cds-services"
UNAUTHORIZED_BODY = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "login"}],
}


def is_cds_path(path: str) -> bool:
    """True for discovery, service and feedback paths."""
    return path == CDS_PREFIX or path.startswith(CDS_PREFIX + "/")


def endpoint_url(request: flask.Request, settings: Settings) -> str:
    """The URL the client called, as it must appear in ``aud``.

    Behind a proxy the service cannot see the public URL, so the configured base wins.
    """
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + request.path
    return request.base_url


def unauthorized() -> flask.Response:
    """A bare 401: no hint of what was wrong, so callers cannot probe the policy."""
    response = flask.jsonify(UNAUTHORIZED_BODY)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header value; "" when malformed, None when absent."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


class RequestGate:
    """Checks each CDS request and records the caller in ``flask.g.cds_client``."""

    def __init__(self, settings: Settings, verifier: TokenVerifier | None) -> None:
        self._settings = settings
        self._verifier = verifier

    def check(self) -> flask.Response | None:
        request = flask.request
        if request.method == "OPTIONS" or not is_cds_path(request.path):
            return None
        flask.g.cds_client = None
        token = bearer_token(request.headers.get("Authorization"))
        if token is None and not self._settings.production:
            return None
        if self._verifier is None:
            # Development without a trust file: nothing to check a token against.
            return None
        if not token:
            log.info("401 on %s %s: no bearer token", request.method, request.path)
            return unauthorized()
        audience = endpoint_url(request, self._settings)
        try:
            client: ClientIdentity = self._verifier.verify(token, audience)
        except TokenRejected as exc:
            log.info("401 on %s %s: %s", request.method, request.path, exc)
            return unauthorized()
        flask.g.cds_client = client
        return None
