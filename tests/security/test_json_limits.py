"""The JSON nesting limit used by request parsing."""

from __future__ import annotations

from service.security import json_too_deep


def nested(depth: int) -> object:
    value: object = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_at_the_limit_passes_and_one_more_fails() -> None:
    assert not json_too_deep(nested(64), 64)
    assert json_too_deep(nested(65), 64)


def test_scalars_and_wide_flat_data_are_not_deep() -> None:
    assert not json_too_deep("x")
    assert not json_too_deep({"entry": [{"resource": {"id": str(i)}} for i in range(10_000)]})


def test_very_deep_data_does_not_overflow_the_stack() -> None:
    assert json_too_deep(nested(100_000))
