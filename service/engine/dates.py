"""FHIR dates as EHRs send them -> the interval they stand for, and how sure we are of it.

Clinical reference §2.0.1: a date-only value is the whole calendar day (windows are inclusive);
a partial date (year, year-month) is uncertain; a missing, unreadable or future date is uncertain
too. The one parser of FHIR date, dateTime and instant strings in the service.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

MISSING = "date missing"
UNREADABLE = "date unreadable"
PARTIAL = "date partial"
FUTURE = "date in the future"
# A clock a few minutes ahead of ours is not "the future".
CLOCK_SKEW = timedelta(minutes=5)

_YEAR = re.compile(r"[0-9]{4}")
_YEAR_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
LONGEST_INSTANT = len("2026-12-01T09:30:00.123456789+14:00")


class When(NamedTuple):
    """[start, end) of what a record's date can mean; ``doubt`` says why it is uncertain.

    A tuple: every dated record makes one, and a tuple is the cheapest immutable value to build."""

    start: datetime | None = None
    end: datetime | None = None
    doubt: str | None = None
    day_only: bool = False


def parse_instant(raw: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or offset; none means UTC) as an aware UTC datetime.

    Raises ValueError for anything else. The records of one patient repeat the same few
    instants, so they are remembered; text longer than any instant is parsed, not kept.
    """
    text = raw.strip()
    return _instant(text) if len(text) <= LONGEST_INSTANT else _instant.__wrapped__(text)


@lru_cache(maxsize=4096)
def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 lies past the calendar's end in UTC
        raise ValueError(f"{text} lies outside the years 1-9999 in UTC") from None


# Evaluation reaches from its time back over a lifetime and a day ahead of it; the calendar's
# own ends (years 1 and 9999) would cut those windows short.
EARLIEST_AT, LATEST_AT = datetime(1900, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)


def instant_or_now(raw: str | None) -> datetime:
    """A command-line evaluation time (``--at``): ISO 8601 (no zone means UTC) in the years
    1900-2999, or now when not given. Raises ValueError naming the option."""
    if raw is None:
        return datetime.now(UTC)
    try:
        moment = parse_instant(raw)
    except ValueError as exc:
        raise ValueError(f"--at {raw}: {exc}") from None
    if not EARLIEST_AT <= moment < LATEST_AT:
        raise ValueError(f"--at {raw}: an evaluation time lies in the years 1900 to 2999")
    return moment


def read_date(raw: Any, now: datetime | None = None) -> When:
    """A FHIR date/dateTime/instant string (or a Period's start) as a When."""
    if raw is None:
        return When(doubt=MISSING)
    if not isinstance(raw, str):
        return When(doubt=UNREADABLE)
    text = raw.strip()
    when = _interval(text) if len(text) <= LONGEST_INSTANT else _interval.__wrapped__(text)
    if now is not None and when.start is not None and when.start > now + CLOCK_SKEW:
        return When(when.start, when.end, FUTURE, when.day_only)
    return when


@lru_cache(maxsize=4096)
def _interval(text: str) -> When:
    """What a date text stands for, whatever the time now. A chart repeats its few dates, so
    they are remembered; text longer than any instant is read, not kept."""
    try:
        if len(text) > len("YYYY-MM-DD"):  # a time is given: the usual EHR dateTime
            start = parse_instant(text)
            return When(start, start)
        if _YEAR.fullmatch(text):
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return When(start, start.replace(year=start.year + 1), PARTIAL)
        if match := _YEAR_MONTH.fullmatch(text):
            start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
            return When(start, (start + timedelta(days=32)).replace(day=1), PARTIAL)
        if _DATE.fullmatch(text):
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return When(start, start + timedelta(days=1), day_only=True)
        start = parse_instant(text)
        return When(start, start)
    except (ValueError, OverflowError):  # OverflowError: the day or month after 9999-12
        return When(doubt=UNREADABLE)


def first_date(resource: dict[str, Any], names: tuple[str, ...],
               now: datetime | None) -> tuple[When, Any]:
    """The first of ``names`` the resource carries (a Period gives its start, else its end), and
    the value it was read from.

    ``onsetString`` has no usable instant (unreadable); ``onsetAge`` and ``onsetRange`` give
    only a span of years (partial).
    """
    for name in names:
        if name not in resource:
            continue
        value = resource[name]
        if isinstance(value, dict):
            value = value.get("start") or value.get("end")
        if name == "onsetString":
            return When(doubt=UNREADABLE), value
        if name in ("onsetAge", "onsetRange"):
            return When(doubt=PARTIAL), value
        return read_date(value, now), value
    return When(doubt=MISSING), None
