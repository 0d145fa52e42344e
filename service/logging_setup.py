"""Structured logs: one JSON object per line, one line per request, no secrets.

Log collectors parse JSON without per-service rules. Request lines carry an id (the caller's
``X-Request-ID`` when it is a sane token, else a new one) that is echoed in the response, so an
EHR's support desk and ours can find the same call. Request lines hold method, route, status and
duration only: no headers (tokens), no bodies (patient data). As a last line of defence every
message is scrubbed of anything shaped like a bearer token or a JWT.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import IO

import orjson
from flask import Flask, Response, g, has_request_context, request

from service import metrics
from service.jsontext import json_text
from service.security.redact import MAX_LOGGED_TRACE_CHARS, scrub

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
request_log = logging.getLogger("spinehip.request")
_NOTED = "request_fields"


class JsonFormatter(logging.Formatter):
    """time, level, logger, pid, message on every line; the request id inside a request; and
    any ``fields`` passed as ``extra={"fields": {...}}``, as members of their own. Every text is
    scrubbed and capped (``security.redact.scrub``): fields can carry request text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": scrub(record.getMessage()),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        for name, value in getattr(record, "fields", {}).items():
            entry[name] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = scrub(self.formatException(record.exc_info), MAX_LOGGED_TRACE_CHARS)
        return json_text(entry, default=str, option=orjson.OPT_NON_STR_KEYS)


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every logger's records, and Python's warnings, to ``stream`` (stderr) as JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


def note_request(**fields: object) -> None:
    """Add ``fields`` to this request's one log line: a view says what it did there, not in a
    line of its own."""
    g.setdefault(_NOTED, {}).update(fields)


def init_app(app: Flask) -> None:
    """Give each request an id, then log it and time it (log line and latency histogram)."""

    @app.before_request
    def start_request() -> None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if _SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:  # a failure before our before_request hook ran
            return response
        seconds = time.perf_counter() - started
        service_id = (request.view_args or {}).get("service_id")
        route = request.url_rule.rule if request.url_rule else None
        metrics.observe_request(service_id, response.status_code, seconds)
        response.headers[REQUEST_ID_HEADER] = g.request_id
        request_log.info(
            "request",
            extra={
                "fields": {
                    **g.get(_NOTED, {}),
                    "event": "request",
                    "method": request.method,
                    "route": route,
                    "service": service_id,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2),
                }
            },
        )
        return response
