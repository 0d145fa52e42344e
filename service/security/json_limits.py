"""Structural limits on parsed JSON.

A body under the size limit can still nest thousands of levels deep; later recursive code (model
validation, rendering) would then hit Python's recursion limit and crash with a 500.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_DEPTH = 64


def json_too_deep(data: Any, limit: int = DEFAULT_MAX_DEPTH) -> bool:
    """True if objects/arrays nest more than ``limit`` levels.

    Recursive but bounded: it never descends more than ``limit + 1`` frames, so it cannot
    overflow however deep the data is, and it is several times faster than an explicit stack.
    """
    return _deeper_than(data, limit)


def _deeper_than(node: Any, remaining: int) -> bool:
    kind = type(node)
    if kind is dict:
        children = node.values()
    elif kind is list:
        children = node
    else:
        return False
    if remaining <= 0:
        return True
    for child in children:
        child_kind = type(child)
        if (child_kind is dict or child_kind is list) and _deeper_than(child, remaining - 1):
            return True
    return False
