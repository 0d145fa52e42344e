"""Tokens never reach a log line, whoever logs them and however."""

from __future__ import annotations

import logging
import time

import pytest

from service.security.redact import (
    MAX_LOGGED_CHARS,
    REDACTED,
    RedactingFilter,
    install_log_redaction,
    redact,
)

JWT = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJodHRwczovL2VociJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("authorization: bearer opaque-token_123/abc==", "opaque-token_123/abc=="),
        (f"token={JWT} rest", JWT),
        ("{'access_token': 'abc.def-123', 'scope': 'x'}", "abc.def-123"),
        ('{"access_token":"zzz-777"}', "zzz-777"),
        ("url?access_token=qqq999&x=1", "qqq999"),
        ('"fhirAuthorization": {"token_type": "Bearer", "x": "y"}', '"x": "y"'),
    ],
)
def test_redact_removes_the_secret(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_plain_text_is_untouched() -> None:
    text = "hook patient-view instance=5b0a cards=2 fetched=patient,conditions"
    assert redact(text) == text


def test_installed_redaction_covers_args_exceptions_and_any_logger(caplog) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug("headers %s", {"Authorization": f"Bearer {JWT}"})
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        logging.getLogger("anything").exception("failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert JWT not in text
    assert "failed" in text and REDACTED in text


def test_a_broken_format_string_is_left_for_the_handler_to_report() -> None:
    record = logging.LogRecord("broken", logging.WARNING, __file__, 1, "%s %s", ("one",), None)
    assert RedactingFilter().filter(record)
    assert record.msg == "%s %s"


#: Inputs built to make a backtracking scrubber quadratic: each unit starts a candidate match that
#: runs on to the end of the text.
ADVERSARIAL_UNITS = ["eyJ-", "eyJ.", "eyJ", "-", "Bearer ", "access_token: '", "fhirAuthorization: {"]
MEGABYTE = 1_000_000


@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS)
def test_a_megabyte_of_adversarial_text_is_scrubbed_in_well_under_a_second(unit: str) -> None:
    text = unit * (MEGABYTE // len(unit)) + f" Authorization: Bearer {JWT} then {JWT} and " + unit * 8 + JWT
    started = time.perf_counter()
    cleaned = redact(text)
    elapsed = time.perf_counter() - started
    assert JWT not in cleaned  # the tokens after the noise are still found
    assert cleaned.count(REDACTED) >= 2
    assert elapsed < 1.0, f"{elapsed:.2f} s for 1 MB of {unit!r}"


def test_a_logged_megabyte_is_capped_and_still_scrubbed(caplog) -> None:
    install_log_redaction()
    caplog.set_level(logging.INFO)
    logging.getLogger("anything").info("token=%s instance=%s", JWT, "eyJ-" * (MEGABYTE // 4))
    [record] = caplog.records
    message = record.getMessage()
    assert len(message) < MAX_LOGGED_CHARS + 100
    assert "more characters not logged" in message
    assert message.startswith(f"token={REDACTED}")
    assert JWT not in caplog.text
