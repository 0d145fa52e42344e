"""Check a CDS Hooks feedback body (FB-02..07) before it is stored."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from service.cdshooks.errors import CdsError
from service.cdshooks.request import MAX_DEPTH
from service.security.json_limits import json_too_deep

OUTCOMES = ("accepted", "overridden")
#: Items one feedback request may carry; an EHR reports a handful of cards at a time.
MAX_FEEDBACK_ITEMS = 100
MAX_COMMENT_CHARS = 2000
#: A FHIR instant: to the second at least, with a time zone (openapi.yaml states the same pattern).
INSTANT = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
                     r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)")


def _text(value: Any, where: str) -> str:
    """A string with something in it (a uuid, a code)."""
    if not isinstance(value, str) or not value.strip():
        raise CdsError(400, f"`{where}` must be a non-empty string", field=where)
    return value


def _timestamp(value: Any, where: str) -> str:
    if value is None:
        raise CdsError(400, f"`{where}` is required (an ISO 8601 instant)", field=where, code="required")
    if not isinstance(value, str) or not INSTANT.fullmatch(value):
        raise CdsError(400, f"`{where}` must be an instant to the second with a time zone "
                            "(e.g. `2026-03-01T10:15:00Z`)", field=where)
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CdsError(400, f"`{where}` is not a real date and time", field=where) from None
    return value


def _item(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CdsError(400, f"`{where}` must be an object", field=where)
    if raw.get("card") is None:
        raise CdsError(400, f"`{where}.card` must be the card uuid", field=f"{where}.card", code="required")
    card = _text(raw["card"], f"{where}.card")
    outcome = raw.get("outcome")
    if outcome not in OUTCOMES:
        raise CdsError(400, f"`{where}.outcome` must be accepted or overridden", field=f"{where}.outcome")
    item: dict[str, Any] = {
        "card": card,
        "outcome": outcome,
        "outcomeTimestamp": _timestamp(raw.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
    }
    # Each outcome has its own member; the other's is a contradiction, not noise to drop.
    for member, only_for in (("acceptedSuggestions", "accepted"), ("overrideReason", "overridden")):
        if member in raw and outcome != only_for:
            raise CdsError(400, f"`{where}.{member}` is only for {only_for} cards", field=f"{where}.{member}")
    if outcome == "accepted":
        item["acceptedSuggestions"] = _accepted(raw.get("acceptedSuggestions"),
                                                f"{where}.acceptedSuggestions")
    if raw.get("overrideReason") is not None:
        item["overrideReason"] = _override_reason(raw["overrideReason"], f"{where}.overrideReason")
    return item


def _accepted(accepted: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(accepted, list) or not accepted:
        raise CdsError(400, f"`{where}` is required when the outcome is accepted", field=where,
                       code="required")
    for i, suggestion in enumerate(accepted):
        if not isinstance(suggestion, dict):
            raise CdsError(400, f"`{where}[{i}]` must be an object with the suggestion's id",
                           field=f"{where}[{i}]")
        _text(suggestion.get("id"), f"{where}[{i}].id")
    return [{"id": s["id"]} for s in accepted]


def _override_reason(reason: Any, where: str) -> dict[str, Any]:
    if not isinstance(reason, dict):
        raise CdsError(400, f"`{where}` must be an object", field=where)
    out: dict[str, Any] = {}
    coding = reason.get("reason")
    if coding is not None:
        # The sandbox sends only code and system; display is not required here (FB-07).
        if not isinstance(coding, dict):
            raise CdsError(400, f"`{where}.reason` must be a Coding with system and code",
                           field=f"{where}.reason")
        out["reason"] = {k: _text(coding.get(k), f"{where}.reason.{k}") for k in ("system", "code")}
        if coding.get("display") is not None:
            out["reason"]["display"] = _text(coding["display"], f"{where}.reason.display")
    comment = reason.get("userComment")
    if comment is not None:
        if not isinstance(comment, str):
            raise CdsError(400, f"`{where}.userComment` must be a string", field=f"{where}.userComment")
        if len(comment) > MAX_COMMENT_CHARS:
            raise CdsError(400, f"`{where}.userComment` is longer than {MAX_COMMENT_CHARS} characters",
                           field=f"{where}.userComment")
        out["userComment"] = comment
    if not out:
        raise CdsError(400, f"`{where}` needs a `reason` or a `userComment`", field=where)
    return out


def parse_feedback(body: Any) -> list[dict[str, Any]]:
    """The validated feedback items; 400 naming the first bad member otherwise."""
    if not isinstance(body, dict):
        raise CdsError(400, "request body must be a JSON object", code="structure")
    if json_too_deep(body, MAX_DEPTH):
        raise CdsError(400, f"JSON nested deeper than {MAX_DEPTH} levels", code="structure")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise CdsError(400, "`feedback` must be a non-empty array", field="feedback", code="required")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise CdsError(
            413, f"`feedback` has {len(items)} items; at most {MAX_FEEDBACK_ITEMS} per request",
            field="feedback", code="too-costly",
        )
    return [_item(raw, f"feedback[{i}]") for i, raw in enumerate(items)]
