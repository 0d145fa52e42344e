"""``python -m benchmarks``: every measurement, the targets checked, RESULTS.md written.

Options: ``--quick`` (tiny sizes and counts: proves the harness runs, figures mean nothing),
``--parts`` to run a subset of A (in process), B (HTTP), C (FHIR fallback), D (rule-set impact
replay of a synthetic population, per engine), ``--results`` for
where the Markdown goes, ``--strict`` to exit 1 when a target fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.fallback import load_patients, local_fhir_server, measure_fallback
from benchmarks.http_bench import HttpLoad, measure_http
from benchmarks.inprocess import Budget, Engine, measure_size
from benchmarks.integration import helper
from benchmarks.profiling import profile_evaluation, profile_request_path
from benchmarks.replay import POPULATION, QUICK_POPULATION, measure_replay, render_replay
from benchmarks.report import TARGET_SIZE, Machine, Results, render, targets, write_results
from benchmarks.servers import ServerUnavailable, floor_server, spinehip_server
from benchmarks.synthetic import synthetic_request

RESULTS_FILE = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Plan:
    budgets: dict[int, Budget]  # request size -> how long it may be measured
    profiles: dict[int, int]  # size -> profiled evaluations
    request_profile: int  # profiled requests through the whole Flask path, at the target size
    http: HttpLoad
    fallback_rounds: int


FULL = Plan(
    budgets={10: Budget(max_rounds=500, max_seconds=3.0),
             TARGET_SIZE: Budget(max_rounds=300, max_seconds=8.0, min_rounds=30),
             2000: Budget(max_rounds=50, max_seconds=6.0)},
    profiles={TARGET_SIZE: 100, 2000: 10},
    request_profile=100,
    http=HttpLoad(concurrency=8, max_requests=3000, max_seconds=20.0, warmup_requests=64),
    fallback_rounds=30,
)
QUICK = Plan(
    budgets={10: Budget(max_rounds=5, max_seconds=0.5, min_rounds=2),
             TARGET_SIZE: Budget(max_rounds=3, max_seconds=0.5, min_rounds=2)},
    profiles={TARGET_SIZE: 2},
    request_profile=2,
    http=HttpLoad(concurrency=8, max_requests=40, max_seconds=10.0, warmup_requests=16),
    fallback_rounds=2,
)


def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def run_in_process(results: Results, plan: Plan, engine: Engine, now: datetime) -> None:
    for size, budget in plan.budgets.items():
        progress(f"A: evaluation, orjson floor and naive path for {size} resources")
        results.sizes.append(measure_size(engine, size, now, budget))
    for size, requests in plan.profiles.items():
        progress(f"A: profiling {requests} evaluations of {size} resources")
        results.profiles.append(profile_evaluation(engine, size, now, requests=requests))


def run_over_http(results: Results, plan: Plan, engine: Engine, now: datetime, parts: str) -> None:
    synthetic = synthetic_request(TARGET_SIZE, now)
    with tempfile.TemporaryDirectory(prefix="spinehip-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            progress("B/C: starting spinehip serve --workers 2")
            service = stack.enter_context(spinehip_server(workdir))
            if "B" in parts:
                progress("B: starting the Flask floor under gunicorn")
                floor = stack.enter_context(floor_server(workdir))
        except ServerUnavailable as exc:
            for part in set(parts) & {"B", "C"}:
                results.skipped[part] = str(exc)
            return
        if "B" in parts:
            progress(f"B: load at concurrency {plan.http.concurrency}, floor and service in turns")
            results.http = measure_http(service.base_url, floor.base_url,
                                        orjson.dumps(synthetic.body), synthetic.size, plan.http)
            progress(f"B: profiling {plan.request_profile} requests through the Flask request path")
            results.profiles.append(profile_request_path(TARGET_SIZE, now, requests=plan.request_profile))
        if "C" in parts:
            unavailable = helper("fhir_server_process").FhirServerUnavailable
            try:
                progress("C: starting the local FHIR server and loading the patients")
                fhir = stack.enter_context(local_fhir_server(workdir / "fhir"))
            except unavailable as exc:
                results.skipped["C"] = str(exc)
                return
            load_patients(fhir, synthetic, now)
            progress(f"C: {plan.fallback_rounds} rounds of fallback calls and single queries")
            results.fallback = measure_fallback(service.base_url, fhir, synthetic, engine.service,
                                                rounds=plan.fallback_rounds)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and counts (smoke run)")
    parser.add_argument("--parts", default="ABCD", type=str.upper,
                        help="which parts to run: A in process, B HTTP, C FHIR fallback, "
                             "D impact replay (default ABCD)")
    parser.add_argument("--population", type=int,
                        help=f"patients of part D (default {POPULATION}, {QUICK_POPULATION} with --quick)")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE, help="Markdown file to write")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if not args.parts or set(args.parts) - set("ABCD"):
        parser.error("--parts takes letters from A, B, C, D")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    now = datetime.now(UTC)
    plan = QUICK if args.quick else FULL
    results = Results(started=now, quick=args.quick, machine=Machine.this_one())
    engine = Engine.load()
    if "A" in args.parts:
        run_in_process(results, plan, engine, now)
    if set(args.parts) & {"B", "C"}:
        run_over_http(results, plan, engine, now, args.parts)
    checks = targets(results)
    text = render(results, checks)
    if "D" in args.parts:
        population = args.population or (QUICK_POPULATION if args.quick else POPULATION)
        with tempfile.TemporaryDirectory(prefix="spinehip-replay-") as tmp:
            replayed = measure_replay(Path(tmp), now, population=population, progress=progress)
        text = f"{text.rstrip()}\n\n{render_replay(replayed)}\n"
    print(text)
    write_results(args.results, text)
    progress(f"written to {args.results}")
    return 1 if args.strict and any(t.passed is False for t in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
