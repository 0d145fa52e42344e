"""Run a population through both rule sets: partitions of patients are the units of work.

``evaluate_partition`` is the one task both engines run; its Impact values are merged with
``Impact.merge`` in whatever order they finish. At most ``window`` partitions are in flight, so
a source that streams (NDJSON, a FHIR server) is never held in memory whole.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from service.cdshooks.errors import CdsError
from service.cdshooks.request import parse_hook_request
from service.cdshooks.services import CdsService, load_services
from service.cdshooks.sources import HeldRecord
from service.config import DEFAULT_SNOOZE_REASONS
from service.engine import RuleSet, load_ruleset
from service.impact.calls import PatientRecord, draft_panel, hook_calls
from service.impact.compare import Answer, Impact, compare_patient, digest, merge_all
from service.pipeline import answer_hook

ENGINES = ("local", "dask")
DEFAULT_PARTITION = 64


@dataclass(frozen=True)
class Workload:
    """Everything a worker needs, picklable: both rule sets, the services, the time, the panel."""

    old: RuleSet
    new: RuleSet
    services: tuple[CdsService, ...]
    now: datetime
    panel: dict[str, Any]


def load_workload(old_dir: Path, new_dir: Path, *, hooks_dir: Path, fixtures_dir: Path,
                  now: datetime, snooze_reasons: tuple[tuple[str, int], ...] = DEFAULT_SNOOZE_REASONS
                  ) -> Workload:
    """Both rule sets validated as the service would (ConfigFileError with every located
    problem otherwise)."""
    return Workload(old=load_ruleset(old_dir, snooze_reasons),
                    new=load_ruleset(new_dir, snooze_reasons),
                    services=tuple(load_services(hooks_dir)), now=now,
                    panel=draft_panel(fixtures_dir))


def _answer(workload: Workload, ruleset: RuleSet, service: CdsService, body: dict[str, Any],
            resources: list[dict[str, Any]]) -> Answer:
    """One hook call through the service's own path; the data arrives as the demo source does."""
    request = parse_hook_request(body, service)
    answer = answer_hook(service, request, ruleset=ruleset, now=workload.now,
                         source=HeldRecord(resources))
    return digest(answer.body)


def evaluate_patient(workload: Workload, record: PatientRecord) -> Impact:
    triples = []
    label = "-"
    try:
        for call in hook_calls(record, workload.services, workload.panel):
            label = call.label
            triples.append((label,
                            _answer(workload, workload.old, call.service, call.body, record.resources),
                            _answer(workload, workload.new, call.service, call.body, record.resources)))
    except (CdsError, ValueError) as exc:  # this patient's data, not the run, is at fault
        return Impact(patients=1, errors=[{"patient": record.patient_id, "call": label,
                                           "error": str(exc)}])
    return compare_patient(record.patient_id, triples)


def evaluate_partition(workload: Workload, records: list[PatientRecord]) -> Impact:
    """The task of both engines: one partition of patients -> its merged Impact."""
    return merge_all(evaluate_patient(workload, record) for record in records)


def partitions(records: Iterable[PatientRecord], size: int) -> Iterator[list[PatientRecord]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# --------------------------------------------------------------------------- engines

_WORKLOAD: Workload | None = None


def _init_worker(workload: Workload) -> None:
    global _WORKLOAD
    _WORKLOAD = workload


def _run_in_worker(records: list[PatientRecord]) -> Impact:
    assert _WORKLOAD is not None
    return evaluate_partition(_WORKLOAD, records)


Progress = Callable[[int], None]


def _bounded(submit: Callable[[list[PatientRecord]], Any], collect: Callable[[set[Any]], set[Any]],
             chunks: Iterator[list[PatientRecord]], window: int, progress: Progress | None) -> Impact:
    """Keep ``window`` partitions in flight; merge each result as it completes."""
    result = Impact()
    pending: dict[Any, int] = {}
    for chunk in itertools.chain(chunks, [None]):
        if chunk is not None:
            pending[submit(chunk)] = len(chunk)
            if len(pending) < window:
                continue
        while pending and (chunk is None or len(pending) >= window):
            for done in collect(set(pending)):
                result = result.merge(done.result())
                count = pending.pop(done)
                if progress:
                    progress(count)
    return result


def run_local(workload: Workload, chunks: Iterator[list[PatientRecord]], *, jobs: int,
              progress: Progress | None = None) -> Impact:
    """Worker processes on this machine; ``jobs`` 1 runs in this process (no pool at all)."""
    if jobs <= 1:
        result = Impact()
        for chunk in chunks:
            result = result.merge(evaluate_partition(workload, chunk))
            if progress:
                progress(len(chunk))
        return result
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(workload,)) as pool:
        def collect(futures: set[Future[Impact]]) -> set[Future[Impact]]:
            return wait(futures, return_when=FIRST_COMPLETED).done

        return _bounded(lambda chunk: pool.submit(_run_in_worker, chunk), collect, chunks,
                        2 * jobs, progress)


def run_dask(workload: Workload, chunks: Iterator[list[PatientRecord]], *, scheduler: str,
             progress: Progress | None = None) -> Impact:
    """Partitions as tasks on a Dask cluster; the workload is sent to every worker once."""
    try:
        from distributed import Client
        from distributed import wait as dask_wait
    except ImportError:
        raise ValueError("--engine dask needs the optional extra: pip install 'spinehip-cds[dask]'") \
            from None
    with Client(scheduler, timeout="20s") as client:
        shared = client.scatter(workload, broadcast=True)
        workers = max(1, sum(client.nthreads().values()))

        def collect(futures: set[Any]) -> set[Any]:
            return set(dask_wait(list(futures), return_when="FIRST_COMPLETED").done)

        return _bounded(lambda chunk: client.submit(evaluate_partition, shared, chunk, pure=False),
                        collect, chunks, 2 * workers, progress)


def replay(workload: Workload, records: Iterable[PatientRecord], *, engine: str = "local",
           jobs: int | None = None, scheduler: str | None = None,
           partition_size: int = DEFAULT_PARTITION, progress: Progress | None = None) -> Impact:
    """Evaluate every record with both rule sets and merge the partitions' results."""
    chunks = partitions(records, partition_size)
    if engine == "dask":
        if not scheduler:
            raise ValueError("--engine dask needs --scheduler ADDRESS")
        return run_dask(workload, chunks, scheduler=scheduler, progress=progress)
    if engine != "local":
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return run_local(workload, chunks, jobs=jobs or os.cpu_count() or 1, progress=progress)
