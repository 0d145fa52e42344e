"""Bulk FHIR ``$export`` output grouped by patient through an on-disk index, never loaded whole.

One pass over every ``*.ndjson`` file records, per line, the patient it belongs to and where the
line is (file, offset, length) in SQLite. Patients are then read back one at a time, each by
seeking to its own lines, so memory holds one patient however large the export.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import orjson

BATCH = 10_000
REFERENCE_FIELDS = ("subject", "patient", "beneficiary")


class NdjsonError(ValueError):
    """A line that is not a FHIR resource, named by file and line number."""


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource belongs to, from its own id or its patient reference."""
    if resource.get("resourceType") == "Patient":
        ident = resource.get("id")
        return ident if isinstance(ident, str) else None
    for name in REFERENCE_FIELDS:
        value = resource.get(name)
        reference = value.get("reference") if isinstance(value, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            return reference.removeprefix("Patient/")
    return None


class NdjsonIndex:
    """The index of one export directory, kept in ``index_path`` (a file, so it is on disk)."""

    def __init__(self, directory: Path, index_path: Path):
        self.directory = Path(directory)
        self.files = sorted(self.directory.glob("*.ndjson"))
        if not self.files:
            raise NdjsonError(f"{self.directory}: no *.ndjson files")
        self.db = sqlite3.connect(index_path)
        self.db.execute("CREATE TABLE line (patient TEXT NOT NULL, file INTEGER, offset INTEGER,"
                        " length INTEGER)")
        self.unlinked = 0  # resources that name no patient: not part of any patient's record
        self._build()

    def _build(self) -> None:
        rows: list[tuple[str, int, int, int]] = []
        for number, path in enumerate(self.files):
            with path.open("rb") as stream:
                offset = 0
                for line_no, line in enumerate(stream, start=1):
                    length = len(line)
                    if line.strip():
                        try:
                            resource = orjson.loads(line)
                        except orjson.JSONDecodeError as exc:
                            raise NdjsonError(f"{path}:{line_no}: not JSON ({exc})") from None
                        if not isinstance(resource, dict):
                            raise NdjsonError(f"{path}:{line_no}: not a FHIR resource")
                        patient = patient_of(resource)
                        if patient is None:
                            self.unlinked += 1
                        else:
                            rows.append((patient, number, offset, length))
                    offset += length
                    if len(rows) >= BATCH:
                        self._insert(rows)
        self._insert(rows)
        self.db.execute("CREATE INDEX line_patient ON line (patient, file, offset)")
        self.db.commit()

    def _insert(self, rows: list[tuple[str, int, int, int]]) -> None:
        self.db.executemany("INSERT INTO line VALUES (?, ?, ?, ?)", rows)
        rows.clear()

    @property
    def patient_count(self) -> int:
        return self.db.execute("SELECT COUNT(DISTINCT patient) FROM line").fetchone()[0]

    def patients(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(patient id, resources) in patient-id order, one patient in memory at a time."""
        with ExitStack() as stack:
            streams: list[BinaryIO] = [stack.enter_context(p.open("rb")) for p in self.files]
            current: str | None = None
            resources: list[dict[str, Any]] = []
            cursor = self.db.execute("SELECT patient, file, offset, length FROM line"
                                     " ORDER BY patient, file, offset")
            for patient, number, offset, length in cursor:
                if patient != current:
                    if current is not None:
                        yield current, resources
                    current, resources = patient, []
                stream = streams[number]
                stream.seek(offset)
                resources.append(orjson.loads(stream.read(length)))
            if current is not None:
                yield current, resources

    def close(self) -> None:
        self.db.close()
