"""``python -m benchmarks.database_faults``: hook calls under load while the database misbehaves.

``spinehip serve --workers 2`` answers the cauda-equina demo patient at concurrency 8 while its
database answers, while PostgreSQL is stopped, and while another process holds SQLite's write
lock. Every answer must carry the critical card (else it counts as an error); the figures show
that no call waits on the database longer than the bound (``SPINEHIP_DB_TIMEOUT``, 250 ms by
default). Needs the PostgreSQL server package (``scripts/pg-test-server.sh``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import requests

from benchmarks.loadgen import LoadResult, run_load
from tests.support.databases import own_postgres, sqlite_locked
from tests.support.processes import RunningServer, running, spinehip_env, start_spinehip

CES_PATIENT = "s08-ces-with-hip-oa"
BODY = json.dumps({
    "hook": "patient-view",
    "hookInstance": "4d9b1f6e-7c2a-4e3b-9a1d-5f6e7c8b9a01",
    "context": {"userId": "Practitioner/bench", "patientId": CES_PATIENT},
}).encode()
CONCURRENCY = 8


def _critical_card(response: requests.Response) -> str | None:
    cards = response.json().get("cards", [])
    if any(c["source"]["topic"]["code"] == "cauda-equina" and c["indicator"] == "critical" for c in cards):
        return None
    return "no critical cauda-equina card"


@contextmanager
def _service(workdir: Path, database_url: str) -> Iterator[RunningServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=database_url,
                       SPINEHIP_JOURNAL_DIR=str(workdir / "journal"))
    with running(start_spinehip(env, workdir, workers=2, name=f"spinehip-{workdir.name}")) as server:
        yield server


def _load(server: RunningServer, requests_: int, seconds: float) -> LoadResult:
    return run_load(f"{server.base_url}/cds-services/spinehip-patient-view", BODY,
                    concurrency=CONCURRENCY, max_requests=requests_, max_seconds=seconds,
                    check=_critical_card)


def _phase(name: str, server: RunningServer, fault: Callable[[], AbstractContextManager[object]],
           requests_: int, seconds: float) -> tuple[str, LoadResult, dict]:
    print(f"… {name}", file=sys.stderr, flush=True)
    with fault():
        result = _load(server, requests_, seconds)
        ready = requests.get(f"{server.base_url}/readyz", timeout=10).json()
    return name, result, ready


def _row(name: str, result: LoadResult, ready: dict) -> str:
    worst = max(result.latency.samples) * 1000
    return (f"| {name} | {result.completed} | {result.errors} | {result.throughput:.0f} | "
            f"{result.latency.p50_ms:.1f} | {result.latency.p99_ms:.1f} | {worst:.0f} | "
            f"{ready['status']} ({ready['journal']['depth']}) |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.database_faults", description=__doc__)
    parser.add_argument("--requests", type=int, default=1500, help="requests per phase (at most)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per phase (at most)")
    args = parser.parse_args(argv)
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="spinehip-faults-") as tmp:
        with own_postgres() as pg, _service(Path(tmp) / "pg", pg.url) as server:
            _load(server, 64, 10.0)  # warm-up
            rows.append(_phase("PostgreSQL answering", server, nullcontext, args.requests, args.seconds))

            @contextmanager
            def stopped() -> Iterator[None]:
                pg.halt()
                try:
                    yield
                finally:
                    pg.resume()

            rows.append(_phase("PostgreSQL stopped", server, stopped, args.requests, args.seconds))
        sqlite = Path(tmp) / "sqlite"
        with _service(sqlite, f"sqlite:///{sqlite / 'store.db'}") as server:
            _load(server, 64, 10.0)
            rows.append(_phase("SQLite answering", server, nullcontext, args.requests, args.seconds))
            rows.append(_phase("SQLite write-locked by another process", server,
                               lambda: sqlite_locked(sqlite / "store.db"), args.requests, args.seconds))
    print(f"Run {started}; `python -m benchmarks.database_faults`; 2 workers, concurrency {CONCURRENCY}, "
          "bound 250 ms (default).\n")
    print("| database | requests | errors | req/s | p50 ms | p99 ms | max ms | /readyz (journal depth) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(_row(*row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
