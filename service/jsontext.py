"""JSON text of what the service writes itself: log lines and the audit trail's JSON columns.

Written with orjson, about a ninth of the json module's cost for a request's log line or a short
list (every call writes a log line and four JSON columns per decision). What orjson refuses, a
lone surrogate or an integer past 64 bits, is written by the json module instead, so nothing is
ever refused. NaN and infinities are written as null on both paths: strict parsers reject them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson


def json_text(value: Any, *, default: Callable[[Any], Any] | None = None, option: int = 0) -> str:
    try:
        return orjson.dumps(value, default=default, option=option).decode()
    except orjson.JSONEncodeError:
        return json.dumps(_finite(value), default=default)


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite as None, as orjson writes it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
