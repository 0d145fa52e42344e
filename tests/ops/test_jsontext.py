"""What the service writes as JSON (log lines, the audit trail's JSON columns) is always JSON."""

from __future__ import annotations

import json

import orjson
import pytest

from service.jsontext import json_text


def _strict(text: str) -> object:
    """JSON as RFC 8259 has it: NaN and Infinity are not numbers there."""
    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(("value", "read_back"), [
    (["Observation/o1", "Condition/c1"], ["Observation/o1", "Condition/c1"]),
    (["a lone \ud800 surrogate"], ["a lone \ud800 surrogate"]),
    ([2**70], [2**70]),
    ([float("nan")], [None]),
    # What orjson refuses beside a value it would write as null: the fallback writes null too.
    ([float("nan"), "a lone \ud800 surrogate"], [None, "a lone \ud800 surrogate"]),
    ({"n": 2**70, "limits": (float("inf"), [float("-inf")])}, {"n": 2**70, "limits": [None, [None]]}),
    ({float("nan"): 2**70}, {"NaN": 2**70}),  # a key is text in JSON, whatever it was
])
def test_whatever_it_holds_the_text_reads_back_as_strict_json(value, read_back) -> None:
    assert _strict(json_text(value)) == read_back


def test_what_orjson_can_write_is_written_by_orjson() -> None:
    value = {"evidence": ["Observation/o1"], "n": 3}
    assert json_text(value) == orjson.dumps(value).decode()
    assert json_text({1: "x"}, option=orjson.OPT_NON_STR_KEYS) == '{"1":"x"}'
