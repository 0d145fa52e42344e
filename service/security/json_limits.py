"""Structural limits on parsed JSON.

A body under the size limit can still nest thousands of levels deep; later recursive code (model
validation, rendering) would then hit Python's recursion limit and crash with a 500.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_DEPTH = 64


def json_too_deep(data: Any, limit: int = DEFAULT_MAX_DEPTH) -> bool:
    """True if objects/arrays nest more than ``limit`` levels; iterative, so it cannot overflow."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
