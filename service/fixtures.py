"""Synthetic fixture files as the service reads them: relative date tokens and demo patients.

Fixture dates are written relative to the evaluation time (``{{now-56d}}``) so a case about
"onset 8 weeks ago" stays true whichever day the tests or the demo run. The CLI, the rule test
cases and the development-mode demo data read fixtures through this module, so they agree on
what a fixture means. Building requests from Bundles and the expected cards live with the tests
(``tests/support``).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

_TOKEN = re.compile(r"\{\{(.*)\}\}", re.DOTALL)
_TOKEN_BODY = re.compile(r"(?P<date>date:)?now(?P<terms>(?:[+-]\d+[ywdhm])*)")
_TERM = re.compile(r"([+-])(\d+)([ywdhm])")
_UNIT_DELTAS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


class FixtureError(ValueError):
    """A fixture file that cannot be used, with the file and JSON path of the problem."""

    def __init__(self, source: str, path: str, message: str):
        self.source = source
        self.path = path
        super().__init__(f"{source}: {path}: {message}")


# --------------------------------------------------------------------------- date tokens


def _shift_years(moment: datetime, years: int) -> datetime:
    """Calendar-year shift; 29 February lands on 28 February in a non-leap year."""
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])
    return moment.replace(year=year, day=day)


def _resolve_token(body: str, now: datetime) -> str | None:
    """The rendered value of one token body, or None when the body is not a known token."""
    match = _TOKEN_BODY.fullmatch(body.strip())
    if match is None:
        return None
    moment = now
    for sign, amount, unit in _TERM.findall(match["terms"]):
        count = int(amount) if sign == "+" else -int(amount)
        if unit == "y":
            moment = _shift_years(moment, count)
        else:
            moment = moment + timedelta(**{_UNIT_DELTAS[unit]: count})
    if match["date"]:
        return moment.date().isoformat()
    return moment.replace(microsecond=0).isoformat()


def _check_now(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be a timezone-aware datetime")
    return now.astimezone(UTC)


def _render(node: Any, now: datetime, source: str, path: str) -> Any:
    if isinstance(node, str):
        token = _TOKEN.fullmatch(node)
        if token is None:
            return node
        try:
            value = _resolve_token(token[1], now)
        except (ValueError, OverflowError):  # a year out of range, a timedelta too large
            raise FixtureError(source, path, f"date token {node!r} lies outside the years "
                                             "1-9999") from None
        if value is None:
            raise FixtureError(
                source, path,
                f"unknown date token {node!r} (expected e.g. {{{{now}}}}, {{{{now-56d}}}}, "
                "{{date:now-52y}}; units y, w, d, h, m)",
            )
        return value
    if isinstance(node, Mapping):
        return {key: _render(value, now, source, f"{path}.{key}") for key, value in node.items()}
    if isinstance(node, list):
        return [_render(value, now, source, f"{path}[{i}]") for i, value in enumerate(node)]
    return node


def render(data: Any, now: datetime, *, source: str = "<data>") -> Any:
    """A deep copy of ``data`` with every whole-string date token replaced relative to ``now``.

    ``source`` names the file in error messages; the JSON path of the bad token is added.
    """
    return _render(data, _check_now(now), source, "$")


# --------------------------------------------------------------------------- files


@lru_cache(maxsize=512)
def _parsed_json(path: str, mtime_ns: int) -> Any:
    """Parsed file contents, cached per modification time (callers render a fresh copy). Parsed
    as the request body is: NaN and Infinity are no JSON, and the engine never sees them."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except json.JSONDecodeError as exc:
        raise FixtureError(path, "$", f"invalid JSON at line {exc.lineno}: {exc.msg}") from None


def read_json(path: str | Path) -> Any:
    file = Path(path)
    try:
        mtime = file.stat().st_mtime_ns
    except OSError as exc:
        raise FixtureError(str(file), "$", f"cannot read file: {exc.strerror}") from None
    return _parsed_json(str(file), mtime)


def expect_type(data: Any, resource_type: str, source: str) -> None:
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise FixtureError(source, "$.resourceType", f"expected a {resource_type}")


def load_bundle(path: str | Path, now: datetime) -> dict[str, Any]:
    """A patient Bundle fixture with its date tokens rendered."""
    data = read_json(path)
    expect_type(data, "Bundle", str(path))
    return render(data, now, source=str(path))


def load_request(path: str | Path, now: datetime) -> dict[str, Any]:
    """A CDS Hooks request fixture with its date tokens rendered."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("hook"), str):
        raise FixtureError(str(path), "$.hook", "expected a CDS Hooks request with a `hook`")
    return render(data, now, source=str(path))


def resource_entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entries that carry a resource; a malformed entry is skipped, not fatal."""
    entries = bundle.get("entry") or []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def bundle_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries, in order (entries without a resource are skipped)."""
    return [e["resource"] for e in resource_entries(bundle)]


def patient_of(bundle: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((r for r in bundle_resources(bundle) if r.get("resourceType") == "Patient"), None)


# --------------------------------------------------------------------------- demo patients


def demo_patient_files(fixtures_dir: str | Path) -> dict[str, Path]:
    """Patient id -> Bundle file, for every fixture under ``fixtures_dir/patients``.

    Cached until the directory changes, so a demo request does not list and parse every file.
    """
    folder = Path(fixtures_dir, "patients")
    return dict(_patient_files(str(folder), folder.stat().st_mtime_ns if folder.is_dir() else 0))


@lru_cache(maxsize=4)
def _patient_files(folder: str, _mtime_ns: int) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for file in sorted(Path(folder).glob("*.json")):
        patient = patient_of(read_json(file))
        if patient is not None and isinstance(patient.get("id"), str):
            out[patient["id"]] = file
    return out


def demo_resources(
    fixtures_dir: str | Path, patient_id: str, now: datetime
) -> list[dict[str, Any]] | None:
    """The demo patient's resources with dates relative to ``now``, or None for an unknown id."""
    file = demo_patient_files(fixtures_dir).get(patient_id)
    if file is None:
        return None
    return bundle_resources(load_bundle(file, now))
