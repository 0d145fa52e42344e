"""Both engines give the same merged result; NDJSON is grouped by patient through its index."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from service import fixtures
from service.cli import main
from service.config import PROJECT_ROOT
from service.impact.ndjson import NdjsonError, NdjsonIndex
from service.impact.replay import load_workload, replay
from service.impact.sources import demo_records
from tests.impact.windows import AT as AT_TEXT
from tests.impact.windows import (
    FEW,
    RULES,
    SIX_WEEKS,
    copy_with_window,
    few_bundles,
    patients_between,
)

AT = datetime.fromisoformat(AT_TEXT)
FIXTURES = PROJECT_ROOT / "fixtures"


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    copy = copy_with_window(tmp_path_factory.mktemp("rules"), 49)
    return load_workload(RULES, copy, hooks_dir=PROJECT_ROOT / "hooks", fixtures_dir=FIXTURES,
                         now=AT)


@pytest.fixture(scope="module")
def serial(workload):
    return replay(workload, demo_records(FIXTURES, AT), jobs=1)


def test_serial_run_finds_the_expected_patients(serial) -> None:
    assert set(serial.changed_patients) == patients_between(SIX_WEEKS, 49)
    assert serial.changed_patients == sorted(serial.changed_patients)


def test_worker_processes_and_any_partition_size_merge_to_the_same_result(workload, serial) -> None:
    parallel = replay(workload, demo_records(FIXTURES, AT), jobs=2, partition_size=3)
    assert parallel.as_dict() == serial.as_dict()


def test_dask_cluster_gives_the_same_result_as_local_processes(workload, serial, tmp_path,
                                                               capsys) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        on_dask = replay(workload, demo_records(FIXTURES, AT), engine="dask",
                         scheduler=cluster.scheduler_address, partition_size=4)
        assert on_dask.as_dict() == serial.as_dict()
        copy = copy_with_window(tmp_path, 49)
        args = ["rules", "impact", "--against", str(RULES), "--rules", str(copy), "--json",
                "--at", AT.isoformat(), "--patients", str(few_bundles(tmp_path / "few"))]
        status = main([*args, "--engine", "dask", "--scheduler", cluster.scheduler_address])
    assert status == 1
    on_cluster = json.loads(capsys.readouterr().out)
    assert {c["patient"] for c in on_cluster["changes"]} == patients_between(SIX_WEEKS, 49) & set(FEW)
    assert main([*args, "--jobs", "2"]) == 1
    assert json.loads(capsys.readouterr().out)["totals"] == on_cluster["totals"]


def test_dask_without_a_scheduler_is_a_clear_error(workload) -> None:
    with pytest.raises(ValueError, match="--scheduler"):
        replay(workload, demo_records(FIXTURES, AT), engine="dask")


def write_export(directory: Path, bundles: Path) -> None:
    """The Bundles' patients as a Bulk FHIR export: one NDJSON file per resource type."""
    directory.mkdir()
    by_type: dict[str, list[bytes]] = {}
    for file in sorted(bundles.glob("*.json")):
        for resource in fixtures.bundle_resources(fixtures.load_bundle(file, AT)):
            by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for kind, lines in by_type.items():
        (directory / f"{kind}.ndjson").write_bytes(b"\n".join(lines) + b"\n")


def test_bulk_ndjson_export_gives_the_same_changes_as_the_bundles(tmp_path, capsys) -> None:
    export, bundles = tmp_path / "export", few_bundles(tmp_path / "few")
    write_export(export, bundles)
    copy = copy_with_window(tmp_path, 49)
    args = ["rules", "impact", "--against", str(RULES), "--rules", str(copy), "--json",
            "--at", AT.isoformat(), "--jobs", "1"]
    assert main([*args, "--patients", str(export)]) == 1
    from_ndjson = json.loads(capsys.readouterr().out)
    assert {c["patient"] for c in from_ndjson["changes"]} == patients_between(SIX_WEEKS, 49) & set(FEW)
    assert main([*args, "--patients", str(bundles)]) == 1
    from_bundles = json.loads(capsys.readouterr().out)
    assert from_ndjson["changes"] == from_bundles["changes"]
    assert from_ndjson["totals"] == from_bundles["totals"]
    assert "NDJSON" in from_ndjson["patients from"]


def test_the_index_groups_lines_scattered_over_files_by_patient(tmp_path) -> None:
    export = tmp_path / "scattered"
    export.mkdir()
    rows = {"Condition": [("c1", "b"), ("c2", "a"), ("c3", "b")],
            "Observation": [("o1", "a"), ("o2", "c"), ("o3", "b")]}
    for kind, items in rows.items():
        (export / f"{kind}.ndjson").write_text("".join(
            json.dumps({"resourceType": kind, "id": ident, "subject": {"reference": f"Patient/{p}"}})
            + "\n\n" for ident, p in items))
    (export / "Patient.ndjson").write_text("".join(
        json.dumps({"resourceType": "Patient", "id": p}) + "\n" for p in "cab"))
    (export / "Group.ndjson").write_text(json.dumps({"resourceType": "Group", "id": "g"}) + "\n")
    index = NdjsonIndex(export, tmp_path / "index.sqlite3")
    try:
        grouped = {p: sorted(r["id"] for r in res) for p, res in index.patients()}
        assert list(grouped) == ["a", "b", "c"]
        assert grouped == {"a": ["a", "c2", "o1"], "b": ["b", "c1", "c3", "o3"], "c": ["c", "o2"]}
        assert index.patient_count == 3 and index.unlinked == 1
    finally:
        index.close()


def test_a_broken_ndjson_line_is_named_by_file_and_line(tmp_path, capsys) -> None:
    export = tmp_path / "broken"
    write_export(export, few_bundles(tmp_path / "few"))
    with (export / "Observation.ndjson").open("a") as stream:
        stream.write('{"resourceType": "Observation", "id": \n')
    lines = (export / "Observation.ndjson").read_text().count("\n")
    with pytest.raises(NdjsonError, match=rf"Observation.ndjson:{lines}: not JSON"):
        NdjsonIndex(export, tmp_path / "i.sqlite3")
    assert main(["rules", "impact", "--against", str(RULES), "--patients", str(export),
                 "--at", AT.isoformat(), "--jobs", "1"]) == 2
    assert f"Observation.ndjson:{lines}" in capsys.readouterr().err
