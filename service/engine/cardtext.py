"""The text a card states for a value worked out per call, and the widest that text can be.

A summary must stay under 140 characters (CDS Hooks) as the clinician sees it, so the compiler
measures each placeholder at the widest text it can become, and the evaluator writes the same
texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

SIDE_WORDS = {"left": "left", "right": "right", "both": "both sides"}
UNSPECIFIED_SIDE = "unspecified side"
UNKNOWN_DURATION = "unknown duration"
UNKNOWN_RELIEF = "unknown"
# The longest a float is written: "-2.2250738585072014e-308".
WIDEST_NUMBER = 24


def side_text(side: str | None) -> str:
    return SIDE_WORDS.get(side or "", UNSPECIFIED_SIDE)


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def days_text(days: int | None) -> str:
    return UNKNOWN_DURATION if days is None else f"{days} days"


def relief_text(percent: float | None) -> str:
    return UNKNOWN_RELIEF if percent is None else f"{number_text(round(percent, 1))}%"


def widest_side() -> int:
    return max(len(text) for text in (*SIDE_WORDS.values(), UNSPECIFIED_SIDE))


def widest_duration() -> int:
    """An onset lies within the calendar, so no duration has more days than it."""
    return max(len(UNKNOWN_DURATION), len(days_text((datetime.max - datetime.min).days)))


def widest_relief() -> int:
    return max(len(UNKNOWN_RELIEF), WIDEST_NUMBER + len("%"))


def widest_score(weights: Iterable[float]) -> int:
    """A score is a sum of some of its weights, so it lies between the sum of the negative ones
    and that of the positive ones; whole weights keep it whole."""
    weights = list(weights)
    if not all(float(w).is_integer() for w in weights):
        return WIDEST_NUMBER
    ends = (sum(w for w in weights if w < 0), sum(w for w in weights if w > 0))
    return max(len(number_text(end)) for end in ends)
