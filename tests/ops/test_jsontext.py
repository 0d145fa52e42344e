"""What the service writes as JSON (log lines, the audit trail's JSON columns) is always JSON."""

from __future__ import annotations

import json

import orjson
import pytest

from service.jsontext import json_text


@pytest.mark.parametrize(("value", "read_back"), [
    (["Observation/o1", "Condition/c1"], ["Observation/o1", "Condition/c1"]),
    (["a lone \ud800 surrogate"], ["a lone \ud800 surrogate"]),
    ([2**70], [2**70]),
    ([float("nan")], [None]),
])
def test_whatever_it_holds_the_text_reads_back(value, read_back) -> None:
    assert json.loads(json_text(value)) == read_back


def test_what_orjson_can_write_is_written_by_orjson() -> None:
    value = {"evidence": ["Observation/o1"], "n": 3}
    assert json_text(value) == orjson.dumps(value).decode()
    assert json_text({1: "x"}, option=orjson.OPT_NON_STR_KEYS) == '{"1":"x"}'
