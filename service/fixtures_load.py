"""Load the synthetic patient fixtures into any FHIR R4 server as transaction Bundles.

Each patient Bundle becomes one transaction of ``PUT Type/id`` entries, so loading twice leaves
the server as loading once did. A suffix gives every id a per-run tail (``pat-1`` becomes
``pat-1-x7k2``) and rewrites the references between the fixture's resources to match, so several
runs can share a public server without overwriting each other's patients.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from service.config import FHIR_TOKEN_ENV, Settings, fhir_token
from service.engine.binding import FHIR_ID
from service.fhir_spec import FHIR_JSON
from service.fixtures import FixtureError, load_bundle

_SUFFIX = re.compile(r"^[A-Za-z0-9\-.]{1,24}$")


class FixtureLoadError(Exception):
    """A fixture that could not be loaded; the message names the file and never the token."""


@dataclass(frozen=True)
class LoadedBundle:
    """One patient Bundle the server accepted."""

    source: Path
    patient_id: str
    resources: int


def patient_bundle_files(fixtures_dir: str | Path) -> list[Path]:
    """The patient Bundles of a fixtures directory (``DIR/patients/*.json``), in name order."""
    files = sorted(Path(fixtures_dir, "patients").glob("*.json"))
    if not files:
        raise FixtureLoadError(f"no patient Bundles in {Path(fixtures_dir, 'patients')}")
    return files


def _suffixed(resource_id: str, suffix: str | None) -> str:
    return f"{resource_id}-{suffix}" if suffix else resource_id


def _entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e for e in bundle.get("entry") or () if isinstance(e, dict)]


def rewrite_references(node: Any, targets: Mapping[str, str]) -> Any:
    """A copy of ``node`` whose ``reference`` strings that name a fixture resource point anew."""
    if isinstance(node, dict):
        out = {key: rewrite_references(value, targets) for key, value in node.items()}
        reference = node.get("reference")
        if isinstance(reference, str) and reference in targets:
            out["reference"] = targets[reference]
        return out
    if isinstance(node, list):
        return [rewrite_references(value, targets) for value in node]
    return node


def reference_targets(
    bundle: Mapping[str, Any], *, suffix: str | None = None, source: str = "<bundle>"
) -> dict[str, str]:
    """Where each resource of the Bundle lands: ``Type/id`` and its ``fullUrl`` -> ``Type/new-id``.

    Refuses what cannot be PUT by id: an entry without resourceType and id, an id the suffix
    makes invalid, the same resource twice.
    """
    if suffix is not None and not _SUFFIX.match(suffix):
        raise FixtureLoadError(f"suffix {suffix!r} must be 1-24 letters, digits, '-' or '.'")
    targets: dict[str, str] = {}
    for index, entry in enumerate(_entries(bundle)):
        resource = entry.get("resource")
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        resource_id = resource.get("id") if isinstance(resource, dict) else None
        if not isinstance(kind, str) or not isinstance(resource_id, str):
            raise FixtureLoadError(
                f"{source}: entry {index} needs a resource with resourceType and id (PUT by id)"
            )
        new_id = _suffixed(resource_id, suffix)
        if not FHIR_ID.fullmatch(new_id):
            raise FixtureLoadError(f"{source}: entry {index}: {new_id!r} is not a valid FHIR id")
        new_ref = f"{kind}/{new_id}"
        if f"{kind}/{resource_id}" in targets:
            raise FixtureLoadError(f"{source}: entry {index}: {kind}/{resource_id} appears twice")
        targets[f"{kind}/{resource_id}"] = new_ref
        if isinstance(entry.get("fullUrl"), str):
            targets[entry["fullUrl"]] = new_ref
    if not targets:
        raise FixtureLoadError(f"{source}: the Bundle has no resources")
    return targets


def transaction_bundle(
    bundle: Mapping[str, Any], *, base_url: str, suffix: str | None = None, source: str = "<bundle>"
) -> dict[str, Any]:
    """The transaction that PUTs every resource of a rendered patient Bundle under its own id.

    References written as ``Type/id`` or as the entry's ``fullUrl`` (``urn:uuid:...``) are
    rewritten to the ids the resources get on the server.
    """
    targets = reference_targets(bundle, suffix=suffix, source=source)
    base = base_url.rstrip("/")
    tx_entries = []
    for entry in _entries(bundle):
        resource = entry["resource"]
        ref = targets[f"{resource['resourceType']}/{resource['id']}"]
        rewritten = rewrite_references(resource, targets)
        rewritten["id"] = ref.partition("/")[2]
        rewritten.pop("meta", None)  # versionId/lastUpdated are the server's to assign
        tx_entries.append(
            {"fullUrl": f"{base}/{ref}", "resource": rewritten, "request": {"method": "PUT", "url": ref}}
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": tx_entries}


def _patient_id(transaction: Mapping[str, Any], source: str) -> str:
    for entry in transaction["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            return entry["resource"]["id"]
    raise FixtureLoadError(f"{source}: the Bundle has no Patient")


def _failure_detail(response: requests.Response) -> str:
    """What the server said, from its OperationOutcome when it sent one, kept short."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason or ""
    issues = body.get("issue") if isinstance(body, dict) else None
    if isinstance(issues, list):
        texts = [
            str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
            for i in issues
            if isinstance(i, dict)
        ]
        return "; ".join(texts)[:500]
    return str(body)[:300]


def post_transaction(
    session: requests.Session,
    base_url: str,
    transaction: Mapping[str, Any],
    *,
    token: str | None,
    timeout_s: float,
    source: str,
) -> None:
    """POST one transaction and check that the server applied every entry."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = session.post(
            base_url.rstrip("/"), json=transaction, headers=headers, timeout=timeout_s
        )
    except requests.RequestException as exc:
        raise FixtureLoadError(f"{source}: FHIR server unreachable ({type(exc).__name__})") from None
    if response.status_code not in (200, 201):
        raise FixtureLoadError(
            f"{source}: the FHIR server answered {response.status_code}: {_failure_detail(response)}"
        )
    try:
        reply = response.json()
    except ValueError:
        raise FixtureLoadError(f"{source}: the FHIR server's answer is not JSON") from None
    if not isinstance(reply, dict) or reply.get("type") != "transaction-response":
        raise FixtureLoadError(f"{source}: the FHIR server did not answer with a transaction-response")
    statuses = [str((e.get("response") or {}).get("status", "")) for e in reply.get("entry") or ()]
    failed = [s for s in statuses if not s.startswith("2")]
    if len(statuses) != len(transaction["entry"]) or failed:
        raise FixtureLoadError(f"{source}: the FHIR server did not apply every entry ({failed})")


def load_fixtures(
    fhir_url: str,
    *,
    token: str | None = None,
    fixtures_dir: str | Path,
    suffix: str | None = None,
    now: datetime | None = None,
    session: requests.Session | None = None,
    timeout_s: float = 60.0,
    on_loaded: Callable[[LoadedBundle], None] | None = None,
) -> list[LoadedBundle]:
    """Load every patient Bundle of ``fixtures_dir`` into the server at ``fhir_url``.

    Dates are rendered relative to ``now`` (default: the current time), so the loaded patients
    look as the fixtures describe them on the day they are loaded.
    """
    now = now or datetime.now(UTC)
    own_session = session is None
    session = session or requests.Session()
    loaded: list[LoadedBundle] = []
    try:
        for file in patient_bundle_files(fixtures_dir):
            try:
                bundle = load_bundle(file, now)
            except FixtureError as exc:
                raise FixtureLoadError(str(exc)) from None
            transaction = transaction_bundle(bundle, base_url=fhir_url, suffix=suffix, source=str(file))
            post_transaction(
                session, fhir_url, transaction, token=token, timeout_s=timeout_s, source=str(file)
            )
            item = LoadedBundle(file, _patient_id(transaction, str(file)), len(transaction["entry"]))
            loaded.append(item)
            if on_loaded is not None:
                on_loaded(item)
    finally:
        if own_session:
            session.close()
    return loaded


def _run_load(args: argparse.Namespace) -> int:
    token = fhir_token(args.token)
    try:
        fixtures_dir = args.fixtures or Settings.from_env().fixtures_dir
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    def report(item: LoadedBundle) -> None:
        print(f"loaded {item.source.name}: Patient/{item.patient_id} ({item.resources} resources)")

    try:
        loaded = load_fixtures(
            args.fhir,
            token=token,
            fixtures_dir=fixtures_dir,
            suffix=args.suffix,
            timeout_s=args.timeout,
            on_loaded=report,
        )
    except FixtureLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(loaded)} patient Bundles loaded into {args.fhir}")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def register(subparsers: Any) -> None:
    """Add ``fixtures load`` to the ``spinehip`` command line."""
    fixtures = subparsers.add_parser("fixtures", help="work with the synthetic patient fixtures")
    actions = fixtures.add_subparsers(dest="fixtures_command", required=True)
    load = actions.add_parser(
        "load",
        help="load the patient Bundles into a FHIR R4 server (PUT by id: safe to repeat)",
        description="Load every fixtures/patients/*.json Bundle into a FHIR R4 server as one "
        "transaction per patient, dates rendered relative to now.",
    )
    load.add_argument("--fhir", required=True, metavar="URL", help="FHIR base URL")
    load.add_argument(
        "--token",
        metavar="T",
        help=f"bearer token for the FHIR server (default: ${FHIR_TOKEN_ENV}; prefer the variable)",
    )
    load.add_argument(
        "--fixtures",
        metavar="DIR",
        type=Path,
        help="fixtures directory holding patients/ (default: $SPINEHIP_FIXTURES_DIR or the bundled one)",
    )
    load.add_argument(
        "--suffix",
        metavar="S",
        help="append -S to every id (and rewrite references) to keep runs apart on a shared server",
    )
    load.add_argument(
        "--timeout", type=_positive, default=60.0, metavar="SECONDS", help="per transaction"
    )
    load.set_defaults(func=_run_load)
