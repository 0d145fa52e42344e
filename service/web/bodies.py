"""Reading a JSON request body with the protocol's errors: 413, 415, 400."""

from __future__ import annotations

from typing import Any

from flask import request

from service.cdshooks.errors import CdsError
from service.cdshooks.request import parse_json_body


def json_body() -> Any:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise CdsError(
            415, f"Content-Type must be application/json, not `{mimetype or 'missing'}`", code="not-supported"
        )
    return parse_json_body(request.get_data(cache=False))
