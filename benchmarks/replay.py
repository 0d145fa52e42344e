"""Part D: a synthetic population replayed through ``spinehip rules impact``, per engine.

The population is a Bulk FHIR export (one NDJSON file per resource type) of clones of the demo
patients, each with ids of its own, written as a stream. The 6-week window is changed to
7 weeks in a copy of the rules and the real command compares the two sets on every patient,
once with local worker processes and once on a Dask LocalCluster of as many single-threaded
worker processes. Figures: patients per second over the whole command (indexing included) and
the peak resident memory of everything the run started, sampled from /proc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from service import fixtures
from service.config import PROJECT_ROOT
from service.fixtures_load import rewrite_references

POPULATION = 100_000
QUICK_POPULATION = 120
SAMPLE_INTERVAL_S = 0.25
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class EngineRun:
    engine: str
    workers: int
    patients: int
    changed: int
    seconds: float
    peak_rss_mib: float
    totals: dict

    @property
    def per_second(self) -> float:
        return self.patients / self.seconds


@dataclass(frozen=True)
class ReplayResult:
    population: int
    resources: int
    export_mib: float
    write_seconds: float
    runs: list[EngineRun]

    @property
    def engines_agree(self) -> bool:
        return len({json.dumps(r.totals, sort_keys=True) for r in self.runs}) == 1


def _templates(now: datetime) -> list[tuple[str, list[dict]]]:
    out = []
    for file in sorted((PROJECT_ROOT / "fixtures" / "patients").glob("*.json")):
        resources = fixtures.bundle_resources(fixtures.load_bundle(file, now))
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        out.append((patient["id"], resources))
    return out


def write_population(directory: Path, count: int, now: datetime) -> int:
    """``count`` patients as NDJSON under ``directory``; returns the number of resources."""
    directory.mkdir(parents=True)
    templates = _templates(now)
    streams: dict[str, object] = {}
    written = 0
    try:
        for n in range(count):
            source_id, resources = templates[n % len(templates)]
            new_id = f"p{n:06d}-{source_id}"[:64]
            targets = {f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{new_id}-{i}"
                       for i, r in enumerate(resources)}
            targets[f"Patient/{source_id}"] = f"Patient/{new_id}"
            for i, resource in enumerate(resources):
                clone = rewrite_references(resource, targets)
                clone["id"] = new_id if resource["resourceType"] == "Patient" else f"{new_id}-{i}"
                kind = clone["resourceType"]
                if kind not in streams:
                    streams[kind] = (directory / f"{kind}.ndjson").open("wb")
                streams[kind].write(orjson.dumps(clone) + b"\n")
                written += 1
    finally:
        for stream in streams.values():
            stream.close()
    return written


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                children = [int(c) for c in task.read_text().split()]
            except OSError:
                continue
            out += children
            stack += children
    return out


def _rss_kib(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Samples the summed RSS of every process this one started; ``[peak KiB]`` on exit."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_INTERVAL_S):
            peak[0] = max(peak[0], sum(_rss_kib(p) for p in _descendants(os.getpid())))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def copy_with_window(target: Path, days: int) -> Path:
    """A copy of the bundled rules at ``target`` whose 6-week window is ``days`` days (written
    as 42 days in the rule files, or as a 6-week named parameter)."""
    shutil.copytree(PROJECT_ROOT / "rules", target)
    edited = 0
    for file in sorted(target.rglob("*.yaml")):
        text = file.read_text(encoding="utf-8")
        new = re.sub(r"\b42d\b", f"{days}d", text)
        new = re.sub(r"(\bvalue:\s*)6w\b", rf"\g<1>{days}d", new)
        if new != text:
            file.write_text(new, encoding="utf-8")
            edited += 1
    if not edited:
        raise ValueError("no 6-week window found in the rule files")
    return target


def run_engine(engine: str, export: Path, rules: Path, now: datetime, workers: int,
               scheduler: str | None = None) -> EngineRun:
    argv = [sys.executable, "-m", "service.cli", "rules", "impact", "--against",
            str(PROJECT_ROOT / "rules"), "--rules", str(rules), "--patients", str(export),
            "--at", now.isoformat(), "--json", "--no-progress", "--engine", engine]
    argv += ["--scheduler", scheduler] if scheduler else ["--jobs", str(workers)]
    with peak_memory() as peak:
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False, cwd=PROJECT_ROOT)
        seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"impact on {engine} exited {done.returncode}: {done.stderr[-2000:]!r}")
    report = json.loads(done.stdout)
    return EngineRun(engine, workers, report["patients"], report["changedPatients"], seconds,
                     peak[0] / 1024, report["totals"])


def measure_replay(workdir: Path, now: datetime, *, population: int, progress) -> ReplayResult:
    export = workdir / "export"
    progress(f"D: writing {population} synthetic patients as NDJSON")
    started = time.perf_counter()
    resources = write_population(export, population, now)
    write_seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in export.iterdir()) / 2**20
    rules = copy_with_window(workdir / "rules-7-weeks", 49)
    workers = len(os.sched_getaffinity(0))
    progress(f"D: replay on local worker processes ({workers})")
    runs = [run_engine("local", export, rules, now, workers)]
    try:
        from distributed import LocalCluster
    except ImportError:
        progress("D: dask not installed (pip install 'spinehip-cds[dask]'); local engine only")
    else:
        progress(f"D: replay on a Dask LocalCluster ({workers} worker processes)")
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            runs.append(run_engine("dask", export, rules, now, workers, cluster.scheduler_address))
    shutil.rmtree(export, ignore_errors=True)
    return ReplayResult(population, resources, size, write_seconds, runs)


def render_replay(result: ReplayResult) -> str:
    lines = [
        "## D. Rule-set impact replay: `spinehip rules impact` on a synthetic population",
        "",
        f"{result.population} patients ({result.resources} resources, {result.export_mib:.0f} MiB "
        f"of Bulk FHIR NDJSON, written in {result.write_seconds:.1f} s), the 6-week window changed "
        "to 7 weeks, every hook of `hooks/` per patient. Time is the whole command (NDJSON "
        "indexed, every patient evaluated with both rule sets, results merged); memory is the "
        "peak summed RSS of the command and every worker.",
        "",
        "| engine | workers | patients | changed | seconds | patients/s | peak memory MiB |",
        "|--------|---------|----------|---------|---------|------------|-----------------|",
    ]
    for run in result.runs:
        lines.append(f"| {run.engine} | {run.workers} | {run.patients} | {run.changed} | "
                     f"{run.seconds:.1f} | {run.per_second:.1f} | {run.peak_rss_mib:.0f} |")
    lines += ["", "Both engines gave the same totals." if result.engines_agree
              else "THE ENGINES DISAGREE: totals differ."]
    return "\n".join(lines)
