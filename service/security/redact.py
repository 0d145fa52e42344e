"""Scrubs credentials from log records before any handler sees them.

Views are written not to log tokens, but a library's debug line or an exception message can still
carry an ``Authorization`` header or a JWT. Redacting at record creation covers every logger and
handler, including ones added later (gunicorn, test capture).

Log text can be request text, so scrubbing must stay linear in its length: JWT-shaped text is
found by scanning each run of base64url characters once, never by a pattern that backtracks over
the run from every ``eyJ`` in it. After scrubbing, any logged text is capped (``cap``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"

# (literal that must occur, lower-cased; pattern; replacement): a pattern runs only when its
# literal is in the text, so ordinary log lines cost a few substring checks. Replacements are
# plain strings or functions: CPython 3.11 expands ``\1`` templates slowly, one match at a time.
_PATTERNS = (
    # Authorization header values, whatever the token looks like.
    ("bearer", re.compile(r"(?i)(?<=\bbearer)\s+[A-Za-z0-9\-._~+/]+=*"), " " + REDACTED),
    # access_token / refresh_token / fhirAuthorization values in logged JSON, dicts or queries.
    (
        "_token",
        re.compile(r"""(?i)((?:access|refresh|id)_token['"]?\s*[:=]\s*['"]?)[^'"\s,}&]+"""),
        lambda match: match.group(1) + REDACTED,
    ),
    (
        "fhirauthorization",
        re.compile(r"""(?i)(['"]?fhirAuthorization['"]?\s*[:=]\s*)\{[^{}]*\}"""),
        lambda match: match.group(1) + REDACTED,
    ),
)
# Runs of base64url-and-dot characters long enough to hold a JWT, each matched once (possessive).
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_.\-]{20,}+")
#: Longest text kept of any one logged message or field; exception text gets more room.
MAX_LOGGED_CHARS = 8192
MAX_LOGGED_TRACE_CHARS = 65536


def _redact_jwt(match: re.Match[str]) -> str:
    """A run from its first ``eyJ`` on, when a dot follows: a JWT's header, payload, signature."""
    run = match.group()
    start = run.find("eyJ")
    while start > 0 and (run[start - 1].isalnum() or run[start - 1] == "_"):  # not at a word start
        start = run.find("eyJ", start + 1)
    if start < 0 or "." not in run[start + 3:]:
        return run
    return run[:start] + REDACTED


def redact(text: str) -> str:
    """``text`` with bearer tokens, JWTs and access tokens replaced; linear in its length."""
    lowered = text.lower()
    for literal, pattern, replacement in _PATTERNS:
        if literal in lowered:
            text = pattern.sub(replacement, text)
    if "eyJ" in text:
        text = _TOKEN_RUN.sub(_redact_jwt, text)
    return text


def cap(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters not logged]"


def scrub(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """Redacted, then capped: what any logged text becomes."""
    return cap(redact(text), limit)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack text in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is reported by the handler, not here
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, MAX_LOGGED_TRACE_CHARS)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, MAX_LOGGED_TRACE_CHARS)
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
