"""Reading a JSON request body with the protocol's errors: 413, 415, 400.

A body over the limit is refused whole, chunked or not: werkzeug's own reading of a chunked body
stops at the limit and hands over the prefix, which could be valid JSON and be answered.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from service.cdshooks.errors import CdsError, echo
from service.cdshooks.request import parse_json_body


def _body_bytes() -> bytes:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)  # werkzeug refuses a declared length over the limit
    # No length (chunked): read one byte past the limit to tell "at the limit" from "over it".
    stream = request.environ["wsgi.input"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        stream.read(limit)  # let a client that is still sending finish and read the 413
        raise RequestEntityTooLarge()
    return data


def json_body() -> Any:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise CdsError(
            415, f"Content-Type must be application/json, not `{echo(mimetype or 'missing')}`",
            code="not-supported",
        )
    return parse_json_body(_body_bytes())
