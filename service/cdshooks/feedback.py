"""Check a CDS Hooks feedback body (FB-02..07) before it is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.cdshooks.errors import CdsError
from service.cdshooks.request import MAX_DEPTH
from service.security.json_limits import json_too_deep

OUTCOMES = ("accepted", "overridden")
#: Items one feedback request may carry; an EHR reports a handful of cards at a time.
MAX_FEEDBACK_ITEMS = 100


def _timestamp(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CdsError(400, f"`{where}` is required (an ISO 8601 instant)", field=where, code="required")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CdsError(400, f"`{where}` is not an ISO 8601 instant", field=where) from None
    if parsed.tzinfo is None:
        raise CdsError(400, f"`{where}` needs a time zone (e.g. `Z`)", field=where)
    return value


def _item(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CdsError(400, f"`{where}` must be an object", field=where)
    card = raw.get("card")
    if not isinstance(card, str) or not card.strip():
        raise CdsError(400, f"`{where}.card` must be the card uuid", field=f"{where}.card", code="required")
    outcome = raw.get("outcome")
    if outcome not in OUTCOMES:
        raise CdsError(400, f"`{where}.outcome` must be accepted or overridden", field=f"{where}.outcome")
    item: dict[str, Any] = {
        "card": card,
        "outcome": outcome,
        "outcomeTimestamp": _timestamp(raw.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
    }
    accepted = raw.get("acceptedSuggestions")
    if outcome == "accepted":
        if not isinstance(accepted, list) or not accepted:
            raise CdsError(
                400,
                f"`{where}.acceptedSuggestions` is required when the outcome is accepted",
                field=f"{where}.acceptedSuggestions",
                code="required",
            )
        for i, suggestion in enumerate(accepted):
            if not isinstance(suggestion, dict) or not isinstance(suggestion.get("id"), str):
                field = f"{where}.acceptedSuggestions[{i}].id"
                raise CdsError(400, f"`{field}` must be the suggestion uuid", field=field)
        item["acceptedSuggestions"] = [{"id": s["id"]} for s in accepted]
    reason = raw.get("overrideReason")
    if reason is not None:
        if outcome != "overridden":
            raise CdsError(
                400, f"`{where}.overrideReason` is only for overridden cards", field=f"{where}.overrideReason"
            )
        item["overrideReason"] = _override_reason(reason, f"{where}.overrideReason")
    return item


def _override_reason(reason: Any, where: str) -> dict[str, Any]:
    if not isinstance(reason, dict):
        raise CdsError(400, f"`{where}` must be an object", field=where)
    out: dict[str, Any] = {}
    coding = reason.get("reason")
    if coding is not None:
        # The sandbox sends only code and system; display is not required here (FB-07).
        if (
            not isinstance(coding, dict)
            or not isinstance(coding.get("code"), str)
            or not isinstance(coding.get("system"), str)
        ):
            raise CdsError(
                400, f"`{where}.reason` must be a Coding with system and code", field=f"{where}.reason"
            )
        out["reason"] = {
            k: coding[k] for k in ("system", "code", "display") if isinstance(coding.get(k), str)
        }
    comment = reason.get("userComment")
    if comment is not None:
        if not isinstance(comment, str):
            raise CdsError(400, f"`{where}.userComment` must be a string", field=f"{where}.userComment")
        out["userComment"] = comment[:2000]
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
