"""Every error leaves as JSON (a FHIR OperationOutcome), never as an HTML page or a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.cdshooks.errors import CdsError, operation_outcome
from service.cdshooks.response import response_bytes

log = logging.getLogger(__name__)

_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def outcome_response(status: int, body: dict) -> Response:
    return Response(response_bytes(body), status=status, mimetype="application/json")


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

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error: %s", type(exc).__name__)
        return outcome_response(
            500, operation_outcome([(None, "internal error; see the service log")], code="exception")
        )
