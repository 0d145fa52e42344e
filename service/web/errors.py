"""Every error leaves as JSON (a FHIR OperationOutcome), never as an HTML page or a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.cdshooks.errors import CdsError, operation_outcome
from service.store import DatabaseUnavailable, JournalUnavailable
from service.store.bounded import DATABASE_FAULTS, describe

log = logging.getLogger(__name__)

_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def outcome_response(status: int, body: dict) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _unavailable(dependency: str, message: str) -> Response:
    """503 naming the dependency, with a hint to retry: nothing safe could be answered."""
    response = outcome_response(503, operation_outcome([(dependency, message)], code="transient"))
    response.headers["Retry-After"] = "5"
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def _cds_error(exc: CdsError) -> Response:
        return outcome_response(exc.status, exc.outcome())

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"request body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        response = outcome_response(
            status, operation_outcome([(None, message)], code=_CODES.get(status, "invalid"))
        )
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # RFC 9110 requires it
        return response

    @app.errorhandler(JournalUnavailable)
    def _journal(exc: JournalUnavailable) -> Response:
        log.error("audit journal unavailable: %s", exc)
        message = f"database unreachable and the local audit journal cannot take the record: {exc}"
        return _unavailable("audit journal", message)

    @app.errorhandler(DatabaseUnavailable)
    def _database(exc: DatabaseUnavailable) -> Response:
        log.warning("database unavailable: %s", exc)
        return _unavailable("database", f"database unavailable ({exc})")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, DATABASE_FAULTS) and not isinstance(exc, OSError):
            # A database fault no degraded path caught: still the dependency's answer, not a 500.
            log.warning("database error: %s", describe(exc))
            return _unavailable("database", f"database unavailable ({describe(exc)})")
        log.exception("unhandled error: %s", type(exc).__name__)
        return outcome_response(
            500, operation_outcome([(None, "internal error; see the service log")], code="exception")
        )
