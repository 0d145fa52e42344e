"""The last step before a response leaves: CDS Hooks JSON hygiene (RESP-05, SBX-09).

No member may be ``null``, ``""``, ``[]`` or ``{}`` except ``cards: []``; systemActions are
omitted when empty and, when present, mirrored into ``extension.systemActions`` because the CDS
Hooks sandbox reads them only there.
"""

from __future__ import annotations

from typing import Any

import orjson

EXTENSION_KEY = "org.spinehip-cds"


_CONTAINERS = (dict, list)
_EMPTIABLE = (str, dict, list)


def prune_empty(value: Any) -> Any:
    """A copy of ``value`` without null or empty members, at any depth (``0`` and ``false`` stay)."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                item = prune_empty(item)
            if item is None or (not item and type(item) in _EMPTIABLE):
                continue
            out[key] = item
        return out
    if kind is list:
        items = []
        for item in value:
            if type(item) in _CONTAINERS:
                item = prune_empty(item)
            if item is None or (not item and type(item) in _EMPTIABLE):
                continue
            items.append(item)
        return items
    return value


def finalize_response(body: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """Clean ``body`` and attach our extension (rule-set version etc.) and the systemActions mirror."""
    cards = prune_empty(body.get("cards") or [])
    out: dict[str, Any] = {"cards": cards}
    system_actions = prune_empty(body.get("systemActions") or [])
    ext = dict(extension)
    if system_actions:
        out["systemActions"] = system_actions
        ext["systemActions"] = system_actions
    ext = prune_empty(ext)
    if ext:
        out["extension"] = ext
    return out


def response_bytes(body: dict[str, Any]) -> bytes:
    """The JSON the EHR receives, the same bytes over HTTP and from ``spinehip evaluate``."""
    return orjson.dumps(body) + b"\n"
