"""Scrubs credentials from log records before any handler sees them.

Views are written not to log tokens, but a library's debug line or an exception message can still
carry an ``Authorization`` header or a JWT. Redacting at record creation covers every logger and
handler, including ones added later (gunicorn, test capture).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS = (
    # Authorization header values, whatever the token looks like.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + REDACTED),
    # Anything JWT-shaped: base64url JSON header, payload and optional signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?"), REDACTED),
    # access_token / refresh_token / fhirAuthorization values in logged JSON, dicts or queries.
    (
        re.compile(r"""(?i)((?:access|refresh|id)_token['"]?\s*[:=]\s*['"]?)[^'"\s,}&]+"""),
        r"\1" + REDACTED,
    ),
    (re.compile(r"""(?i)(['"]?fhirAuthorization['"]?\s*[:=]\s*)\{[^{}]*\}"""), r"\1" + REDACTED),
)


def redact(text: str) -> str:
    """``text`` with bearer tokens, JWTs and access tokens replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack text in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is reported by the handler, not here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Run every new log record through :class:`RedactingFilter`; calling twice is harmless."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
