"""Synthetic fixture files: relative date tokens, hook requests built from patient Bundles, cases.

Fixture dates are written relative to the evaluation time (``{{now-56d}}``) so a case about
"onset 8 weeks ago" stays true whichever day the tests or the demo run. Everything here is pure
Python and fast: the tests, the CLI and the development-mode demo data all read fixtures through
this module, so they agree on what a fixture means.
"""

from __future__ import annotations

import calendar
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from service.yamlsource import ConfigFileError, load_yaml

# Prefetch key -> FHIR resource type, as templated in hooks/*.yaml. The Patient key carries the
# resource itself; every other key a searchset Bundle.
PREFETCH_RESOURCE_TYPES: dict[str, str] = {
    "patient": "Patient",
    "conditions": "Condition",
    "observations": "Observation",
    "procedures": "Procedure",
    "diagnosticReports": "DiagnosticReport",
    "imagingStudies": "ImagingStudy",
}
ORDER_HOOKS = frozenset({"order-select", "order-sign"})
HOOKS = frozenset({"patient-view"}) | ORDER_HOOKS
DEFAULT_USER_ID = "Practitioner/spinehip-demo-clinician"
# Fixed namespace so a request rebuilt from the same Bundle gets the same hookInstance.
_HOOK_INSTANCE_NAMESPACE = uuid.UUID("5b1f3c52-7d0e-4f1a-9a53-2f6a0c1e8d47")

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
        value = _resolve_token(token[1], now)
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
    """Parsed file contents, cached per modification time (callers render a fresh copy)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FixtureError(path, "$", f"invalid JSON at line {exc.lineno}: {exc.msg}") from None


def _read_json(path: str | Path) -> Any:
    file = Path(path)
    try:
        mtime = file.stat().st_mtime_ns
    except OSError as exc:
        raise FixtureError(str(file), "$", f"cannot read file: {exc.strerror}") from None
    return _parsed_json(str(file), mtime)


def _expect_type(data: Any, resource_type: str, source: str) -> None:
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise FixtureError(source, "$.resourceType", f"expected a {resource_type}")


def load_bundle(path: str | Path, now: datetime) -> dict[str, Any]:
    """A patient Bundle fixture with its date tokens rendered."""
    data = _read_json(path)
    _expect_type(data, "Bundle", str(path))
    return render(data, now, source=str(path))


def load_request(path: str | Path, now: datetime) -> dict[str, Any]:
    """A CDS Hooks request fixture with its date tokens rendered."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("hook"), str):
        raise FixtureError(str(path), "$.hook", "expected a CDS Hooks request with a `hook`")
    return render(data, now, source=str(path))


def _resource_entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entries that carry a resource; a malformed entry is skipped, not fatal."""
    entries = bundle.get("entry") or []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def bundle_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries, in order (entries without a resource are skipped)."""
    return [e["resource"] for e in _resource_entries(bundle)]


def _patient_of(bundle: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((r for r in bundle_resources(bundle) if r.get("resourceType") == "Patient"), None)


# --------------------------------------------------------------------------- requests


def _searchset(entries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:  # CDS Hooks forbids empty arrays in JSON it exchanges
        out["entry"] = [
            {"fullUrl": e["fullUrl"], "resource": e["resource"], "search": {"mode": "match"}}
            if e.get("fullUrl") else {"resource": e["resource"], "search": {"mode": "match"}}
            for e in entries
        ]
    return out


def _draft_bundle(draft_orders: Mapping[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(draft_orders, Mapping):
        return dict(draft_orders)
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": resource} for resource in draft_orders]}


def build_request(
    bundle: Mapping[str, Any],
    *,
    hook: str,
    prefetch_keys: Iterable[str] | None,
    patient_id: str,
    draft_orders: Mapping[str, Any] | list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
    user_id: str = DEFAULT_USER_ID,
) -> dict[str, Any]:
    """A CDS Hooks 2.0 request whose prefetch is the patient Bundle grouped by prefetch key.

    ``prefetch_keys`` None means every key; a subset leaves the others out, as an EHR that
    prefetches only part of what the service asked for would. The hookInstance is derived from
    hook and context so a regenerated request is byte-identical. Date tokens are left as they are.
    """
    if hook not in HOOKS:
        raise ValueError(f"unsupported hook {hook!r}; expected one of {sorted(HOOKS)}")
    keys = list(PREFETCH_RESOURCE_TYPES) if prefetch_keys is None else list(prefetch_keys)
    unknown = [k for k in keys if k not in PREFETCH_RESOURCE_TYPES]
    if unknown:
        raise ValueError(f"unknown prefetch keys {unknown}; known: {list(PREFETCH_RESOURCE_TYPES)}")
    patient = _patient_of(bundle)
    if patient is None or patient.get("id") != patient_id:
        raise ValueError(f"the Bundle has no Patient with id {patient_id!r}")

    context: dict[str, Any] = {"userId": user_id, "patientId": patient_id}
    if hook in ORDER_HOOKS:
        if draft_orders is None:
            raise ValueError(f"{hook} needs draft_orders")
        drafts = _draft_bundle(draft_orders)
        if hook == "order-select":
            if selections is None:
                selections = [f"{r['resourceType']}/{r['id']}" for r in bundle_resources(drafts)
                              if r.get("resourceType") and r.get("id")]
            context["selections"] = list(selections)
        context["draftOrders"] = drafts
    elif draft_orders is not None or selections is not None:
        raise ValueError("draft_orders and selections belong to order-select/order-sign only")

    prefetch: dict[str, Any] = {}
    entries = _resource_entries(bundle)
    for key, rtype in PREFETCH_RESOURCE_TYPES.items():
        if key not in keys:
            continue
        if rtype == "Patient":
            prefetch[key] = patient
        else:
            prefetch[key] = _searchset(
                [e for e in entries if e["resource"].get("resourceType") == rtype]
            )

    # Derived from the whole context so two requests for one patient never share an instance.
    instance = uuid.uuid5(_HOOK_INSTANCE_NAMESPACE, json.dumps([hook, context], sort_keys=True))
    return {"hookInstance": str(instance), "hook": hook, "context": context, "prefetch": prefetch}


ORDER_REQUESTS_FILE = "order_requests.yaml"


def _order_specs(root: Path) -> list[dict[str, str]]:
    doc = load_yaml(root / ORDER_REQUESTS_FILE)
    specs = doc.data.get("orders") if isinstance(doc.data, dict) else None
    if not isinstance(specs, list):
        raise ConfigFileError([doc.error(("orders",), "expected a top-level `orders:` list")])
    errors = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"request", "patient", "hook"}:
            errors.append(doc.error(("orders", index), "needs exactly `request`, `patient`, `hook`"))
        elif spec["hook"] not in ORDER_HOOKS:
            errors.append(doc.error(("orders", index, "hook"), f"not an order hook: {spec['hook']}"))
    if errors:
        raise ConfigFileError(errors)
    return specs


def planned_requests(fixtures_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Request file name -> the request build_request makes for it (date tokens unrendered).

    One patient-view request per patient Bundle, plus the order-hook requests listed in
    ``order_requests.yaml`` with their drafts from ``drafts/<request>.json``. The checked-in
    files under ``requests/`` must equal this, so they cannot drift from the patients.
    """
    root = Path(fixtures_dir)
    bundles = {f.stem: _read_json(f) for f in sorted((root / "patients").glob("*.json"))}

    def patient_id(slug: str) -> str:
        patient = _patient_of(bundles[slug])
        if patient is None:
            raise FixtureError(f"patients/{slug}.json", "$.entry", "no Patient resource")
        return patient["id"]

    out = {slug: build_request(bundle, hook="patient-view", prefetch_keys=None,
                               patient_id=patient_id(slug))
           for slug, bundle in bundles.items()}
    for spec in _order_specs(root):
        slug = spec["patient"]
        if slug not in bundles:
            raise FixtureError(ORDER_REQUESTS_FILE, f"$.{spec['request']}", f"no patient {slug!r}")
        drafts = _read_json(root / "drafts" / f"{spec['request']}.json")
        _expect_type(drafts, "Bundle", f"drafts/{spec['request']}.json")
        out[spec["request"]] = build_request(
            bundles[slug], hook=spec["hook"], prefetch_keys=None, patient_id=patient_id(slug),
            draft_orders=drafts,
        )
    return out


# --------------------------------------------------------------------------- expected cards


@dataclass(frozen=True)
class ExpectedCard:
    """One card a case must produce: its topic (rule slug), indicator and ordered CPT codes."""

    topic: str
    indicator: str
    cpt: tuple[str, ...]


@dataclass(frozen=True)
class FixtureCase:
    """One row of fixtures/expected.yaml: the files of a case and the exact cards it expects."""

    id: str
    patient: Path
    request: Path
    cards: tuple[ExpectedCard, ...]
    pama: Mapping[str, str]
    why: str

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(card.topic for card in self.cards)


CARD_TOPICS = (
    "cauda-equina", "progressive-neuro-deficit", "serious-pathology", "early-lumbar-imaging",
    "spine-pattern-mri", "hip-pattern-radiographs", "diagnostic-hip-injection",
    "injection-confirms-hip", "injection-points-to-spine", "lateral-hip-pain",
    "piriformis-pattern", "si-joint-pattern", "documentation-gap",
)
INDICATORS = ("info", "warning", "critical")
PAMA_RATINGS = ("appropriate", "not-appropriate", "no-criteria-apply")
EXPECTATIONS_FILE = "expected.yaml"


def _case_from(doc: Any, index: int, raw: Any, root: Path, errors: list[Any]) -> FixtureCase | None:
    loc: tuple[str | int, ...] = ("cases", index)
    if not isinstance(raw, dict):
        errors.append(doc.error(loc, "a case must be a mapping"))
        return None
    allowed = {"id", "patient", "request", "cards", "pama", "why"}
    for key in raw:
        if key not in allowed:
            errors.append(doc.error((*loc, key), f"unknown key `{key}`"))
    for key in ("id", "patient", "request", "why"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            errors.append(doc.error((*loc, key), f"`{key}` must be a non-empty string"))
    cards: list[ExpectedCard] = []
    raw_cards = raw.get("cards")
    if not isinstance(raw_cards, list):
        errors.append(doc.error((*loc, "cards"), "`cards` must be a list (empty when none fire)"))
        raw_cards = []
    for j, card in enumerate(raw_cards):
        cloc = (*loc, "cards", j)
        if not isinstance(card, dict) or set(card) != {"topic", "indicator", "cpt"}:
            errors.append(doc.error(cloc, "a card needs exactly `topic`, `indicator` and `cpt`"))
            continue
        if card["topic"] not in CARD_TOPICS:
            errors.append(doc.error((*cloc, "topic"), f"unknown card topic {card['topic']!r}"))
        if card["indicator"] not in INDICATORS:
            errors.append(
                doc.error((*cloc, "indicator"), f"unknown indicator {card['indicator']!r}")
            )
        cpt = card["cpt"]
        if not isinstance(cpt, list) or not all(isinstance(c, str) for c in cpt) \
                or cpt != sorted(cpt):
            errors.append(doc.error((*cloc, "cpt"), "`cpt` must be a sorted list of code strings"))
            continue
        cards.append(ExpectedCard(card["topic"], card["indicator"], tuple(cpt)))
    pama = raw.get("pama") or {}
    if not isinstance(pama, dict) or any(v not in PAMA_RATINGS for v in pama.values()):
        errors.append(doc.error((*loc, "pama"), f"`pama` maps draft ids to {PAMA_RATINGS}"))
        pama = {}
    if errors:
        return None
    return FixtureCase(raw["id"], root / raw["patient"], root / raw["request"], tuple(cards),
                       dict(pama), raw["why"])


def load_cases(fixtures_dir: str | Path) -> list[FixtureCase]:
    """Every case of ``fixtures_dir/expected.yaml``; all problems reported at once."""
    root = Path(fixtures_dir)
    doc = load_yaml(root / EXPECTATIONS_FILE)
    raw_cases = doc.data.get("cases") if isinstance(doc.data, dict) else None
    if not isinstance(raw_cases, list):
        raise ConfigFileError([doc.error(("cases",), "expected a top-level `cases:` list")])
    errors: list[Any] = []
    cases: list[FixtureCase] = []
    for index, raw in enumerate(raw_cases):
        case_errors: list[Any] = []
        case = _case_from(doc, index, raw, root, case_errors)
        errors.extend(case_errors)
        if case is not None:
            cases.append(case)
    ids = [c.id for c in cases]
    for index, case in enumerate(cases):
        if ids.index(case.id) != index:
            errors.append(doc.error(("cases", index, "id"), f"duplicate case id {case.id!r}"))
    if errors:
        raise ConfigFileError(errors)
    return cases


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
        patient = _patient_of(_read_json(file))
        if patient is not None and isinstance(patient.get("id"), str):
            out[patient["id"]] = file
    return out


def demo_patient_ids(fixtures_dir: str | Path) -> list[str]:
    """Ids of the Patients the development server can serve as demo patients."""
    return sorted(demo_patient_files(fixtures_dir))


def demo_resources(
    fixtures_dir: str | Path, patient_id: str, now: datetime
) -> list[dict[str, Any]] | None:
    """The demo patient's resources with dates relative to ``now``, or None for an unknown id."""
    file = demo_patient_files(fixtures_dir).get(patient_id)
    if file is None:
        return None
    return bundle_resources(load_bundle(file, now))
