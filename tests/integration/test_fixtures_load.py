"""``spinehip fixtures load``: patient Bundles become idempotent PUT transactions on a FHIR server."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from fhir_server_process import FhirEndpoint, LocalFhirServer, free_port

from service.fixtures import load_bundle
from service.fixtures_load import FixtureLoadError, load_fixtures, transaction_bundle

DATA_DIR = Path(__file__).parent / "data"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LOADER_CHECK = DATA_DIR / "patients" / "loader-check.json"


def _search(endpoint: FhirEndpoint, query: str) -> dict:
    headers = {"Accept": "application/fhir+json"}
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    response = requests.get(f"{endpoint.base_url}/{query}", headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def _by_id(bundle: dict) -> dict[str, dict]:
    return {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", [])}


# --------------------------------------------------------------------------- the transaction


def test_transaction_puts_every_resource_under_its_own_id() -> None:
    tx = transaction_bundle(load_bundle(LOADER_CHECK, NOW), base_url="http://fhir.test/fhir/")
    assert tx["type"] == "transaction"
    requests_made = [(e["request"]["method"], e["request"]["url"]) for e in tx["entry"]]
    assert requests_made == [
        ("PUT", "Patient/loader-check"),
        ("PUT", "Condition/loader-check-hip-oa"),
        ("PUT", "Procedure/loader-check-injection"),
        ("PUT", "Observation/loader-check-pain-before"),
        ("PUT", "Observation/loader-check-pain-after"),
    ]
    assert tx["entry"][0]["fullUrl"] == "http://fhir.test/fhir/Patient/loader-check"


def test_suffix_renames_ids_and_rewrites_type_id_and_urn_uuid_references() -> None:
    tx = transaction_bundle(load_bundle(LOADER_CHECK, NOW), base_url="http://fhir.test/fhir", suffix="r1")
    resources = {e["resource"]["id"]: e["resource"] for e in tx["entry"]}
    assert set(resources) == {
        "loader-check-r1", "loader-check-hip-oa-r1", "loader-check-injection-r1",
        "loader-check-pain-before-r1", "loader-check-pain-after-r1",
    }
    # the Condition named its patient by the entry's urn:uuid fullUrl, the others by Type/id
    assert resources["loader-check-hip-oa-r1"]["subject"] == {"reference": "Patient/loader-check-r1"}
    after = resources["loader-check-pain-after-r1"]
    assert after["subject"] == {"reference": "Patient/loader-check-r1"}
    assert after["partOf"] == [{"reference": "Procedure/loader-check-injection-r1"}]
    assert tx["entry"][3]["request"]["url"] == "Observation/loader-check-pain-before-r1"


def test_dates_are_rendered_before_loading() -> None:
    tx = transaction_bundle(load_bundle(LOADER_CHECK, NOW), base_url="http://fhir.test/fhir")
    condition = tx["entry"][1]["resource"]
    assert condition["onsetDateTime"] == "2025-11-02T09:30:00+00:00"


@pytest.mark.parametrize("suffix", ["", "has space", "x" * 25, "ü"])
def test_suffix_that_cannot_be_part_of_an_id_is_refused(suffix: str) -> None:
    with pytest.raises(FixtureLoadError, match="suffix"):
        transaction_bundle(load_bundle(LOADER_CHECK, NOW), base_url="http://x/fhir", suffix=suffix)


def test_entry_without_an_id_is_refused_naming_the_file() -> None:
    bundle = load_bundle(LOADER_CHECK, NOW)
    del bundle["entry"][2]["resource"]["id"]
    with pytest.raises(FixtureLoadError, match=r"loader-check\.json: entry 2 .*id"):
        transaction_bundle(bundle, base_url="http://x/fhir", source=str(LOADER_CHECK))


def test_fixtures_directory_without_patient_bundles_is_an_error(tmp_path) -> None:
    with pytest.raises(FixtureLoadError, match="no patient Bundles"):
        load_fixtures("http://127.0.0.1:9/fhir", fixtures_dir=tmp_path)


# --------------------------------------------------------------------------- a real server


def test_loaded_patient_is_found_by_search_with_references_intact(fhir_endpoint: FhirEndpoint) -> None:
    suffix = f"t{secrets.token_hex(4)}"
    loaded = load_fixtures(
        fhir_endpoint.base_url, token=fhir_endpoint.token, fixtures_dir=DATA_DIR, suffix=suffix
    )
    assert [(item.patient_id, item.resources) for item in loaded] == [(f"loader-check-{suffix}", 5)]

    found = _by_id(_search(fhir_endpoint, f"Observation?patient=loader-check-{suffix}"))
    assert set(found) == {f"loader-check-pain-before-{suffix}", f"loader-check-pain-after-{suffix}"}
    for observation in found.values():
        assert observation["partOf"] == [{"reference": f"Procedure/loader-check-injection-{suffix}"}]
    conditions = _by_id(_search(fhir_endpoint, f"Condition?patient=loader-check-{suffix}"))
    assert list(conditions) == [f"loader-check-hip-oa-{suffix}"]


def test_loading_twice_updates_in_place_instead_of_duplicating(fhir_endpoint: FhirEndpoint) -> None:
    suffix = f"t{secrets.token_hex(4)}"
    for _ in range(2):
        load_fixtures(
            fhir_endpoint.base_url, token=fhir_endpoint.token, fixtures_dir=DATA_DIR, suffix=suffix
        )
    found = _search(fhir_endpoint, f"Observation?patient=loader-check-{suffix}")
    assert len(found["entry"]) == 2
    assert {e["resource"]["meta"]["versionId"] for e in found["entry"]} == {"2"}


@pytest.mark.fhirserver
def test_wrong_token_is_reported_with_the_status_and_without_the_token(
    fhir_server: LocalFhirServer,
) -> None:
    wrong = "not-the-token-" + secrets.token_hex(8)
    with pytest.raises(FixtureLoadError) as caught:
        load_fixtures(fhir_server.base_url, token=wrong, fixtures_dir=DATA_DIR)
    message = str(caught.value)
    assert "loader-check.json" in message and "401" in message
    assert wrong not in message


def test_unreachable_server_is_reported_not_raised_as_a_crash() -> None:
    with pytest.raises(FixtureLoadError, match="unreachable"):
        load_fixtures(f"http://127.0.0.1:{free_port()}/fhir", fixtures_dir=DATA_DIR, timeout_s=5)


# --------------------------------------------------------------------------- the command line


@pytest.mark.fhirserver
def test_command_loads_with_the_token_from_the_environment(
    fhir_server: LocalFhirServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli import main

    suffix = f"cli{secrets.token_hex(3)}"
    monkeypatch.setenv("SPINEHIP_FHIR_TOKEN", fhir_server.token)
    code = main(["fixtures", "load", "--fhir", fhir_server.base_url,
                 "--fixtures", str(DATA_DIR), "--suffix", suffix])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Patient/loader-check-{suffix} (5 resources)" in out
    endpoint = FhirEndpoint(fhir_server.base_url, fhir_server.token)
    assert _search(endpoint, f"Patient?_id=loader-check-{suffix}")["total"] == 1


@pytest.mark.fhirserver
def test_command_failure_exits_1_with_the_reason_and_without_the_token(
    fhir_server: LocalFhirServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli import main

    wrong = "wrong-" + secrets.token_hex(8)
    code = main(["fixtures", "load", "--fhir", fhir_server.base_url, "--token", wrong,
                 "--fixtures", str(DATA_DIR)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("error: ") and "401" in captured.err
    assert wrong not in captured.err + captured.out
