"""The last step before a response leaves: CDS Hooks JSON hygiene (RESP-05, SBX-09).

No member may be ``null``, ``""``, ``[]`` or ``{}`` except ``cards: []``; systemActions are
omitted when empty and, when present, mirrored into ``extension.systemActions`` because the CDS
Hooks sandbox reads them only there.
"""

from __future__ import annotations

from typing import Any

EXTENSION_KEY = "org.spinehip-cds"


def prune_empty(value: Any) -> Any:
    """A copy of ``value`` without null or empty members, at any depth."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            pruned = prune_empty(item)
            if pruned is None or pruned == "" or pruned == [] or pruned == {}:
                continue
            out[key] = pruned
        return out
    if isinstance(value, list):
        items = [prune_empty(v) for v in value]
        return [v for v in items if not (v is None or v == "" or v == [] or v == {})]
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
