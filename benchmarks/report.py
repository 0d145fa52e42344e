"""The run's figures as Markdown: printed to the terminal and written to ``benchmarks/RESULTS.md``.

The file's generated part is replaced on every run; whatever follows ``NOTES_MARKER`` was written
by a person (what the profile means, why a target misses) and is carried over unchanged.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.fallback import FallbackResult
from benchmarks.http_bench import ROUNDS, HttpResult
from benchmarks.inprocess import SizeResult
from benchmarks.loadgen import LoadResult
from benchmarks.profiling import Profile, ProfileLine

NOTES_MARKER = "<!-- Hand-written notes below this line are kept when the benchmark rewrites the file. -->"


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    python: str
    system: str
    load_average: float  # 1-minute load when the run started: other work on the cores skews figures

    @classmethod
    def this_one(cls) -> Machine:
        return cls(_cpu_model(), len(os.sched_getaffinity(0)), platform.python_version(),
                   f"{platform.system()} {platform.release()}", os.getloadavg()[0])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    limit: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]


@dataclass
class Results:
    started: datetime
    quick: bool
    machine: Machine
    sizes: list[SizeResult] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    http: HttpResult | None = None
    fallback: FallbackResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # part -> why it did not run


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table with padded columns, readable as plain text too."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]


def ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _p50_p99(p50: float, p99: float) -> str:
    return f"{ms(p50)} / {ms(p99)}"


TARGET_SIZE = 200


def targets(results: Results) -> list[Target]:
    """The issue's targets, each PASS/FAIL, or NOT RUN when its part did not run."""
    size = next((s for s in results.sizes if s.size == TARGET_SIZE), None)
    http, fb = results.http, results.fallback
    return [
        Target(f"A1 evaluation of {TARGET_SIZE} resources <= 3x orjson floor (p50)",
               f"{size.evaluation_over_floor:.2f}x ({ms(size.evaluation.p50_ms)} vs "
               f"{ms(size.floor.p50_ms)} ms)" if size else "-",
               "<= 3.0x", size.evaluation_over_floor <= 3.0 if size else None),
        Target(f"A2 naive R4B path >= 10x slower than evaluation ({TARGET_SIZE}, p50)",
               f"{size.naive_over_evaluation:.1f}x ({ms(size.naive.p50_ms)} vs "
               f"{ms(size.evaluation.p50_ms)} ms)" if size else "-",
               ">= 10x", size.naive_over_evaluation >= 10 if size else None),
        Target("B1 HTTP throughput >= 50 % of the Flask floor",
               f"{http.throughput_ratio:.0%} ({http.service.throughput:.0f} vs "
               f"{http.floor.throughput:.0f} req/s)" if http else "-",
               ">= 50 %", http.throughput_ratio >= 0.5 if http else None),
        Target("B2 HTTP p99 <= 20 ms at concurrency 8",
               f"{ms(http.service.latency.p99_ms)} ms" if http else "-",
               "<= 20 ms", http.service.latency.p99_ms <= 20 if http else None),
        Target("C fallback call <= slowest single query + 5 ms (p50)",
               f"{ms(fb.call.p50_ms)} ms vs {ms(fb.slowest.timings.p50_ms)} ms" if fb else "-",
               f"<= {ms(fb.slowest.timings.p50_ms + 5)} ms" if fb else "slowest + 5 ms",
               fb.call.p50_ms <= fb.slowest.timings.p50_ms + 5 if fb else None),
    ]


def _section_a(results: Results) -> list[str]:
    rows = [[str(s.size), f"{s.body_bytes / 1024:.0f} KiB", str(s.cards),
             _p50_p99(s.floor.p50_ms, s.floor.p99_ms), _p50_p99(s.evaluation.p50_ms, s.evaluation.p99_ms),
             _p50_p99(s.naive.p50_ms, s.naive.p99_ms),
             str(s.evaluation.count),
             f"{s.evaluation_over_floor:.2f}x", f"{s.naive_over_evaluation:.1f}x"] for s in results.sizes]
    return [
        "## A. Evaluation per request, in process",
        "",
        "Evaluation = `parse_json_body` + `parse_hook_request` + `answer_hook` (prefetch resolution, "
        "rules, cards, response hygiene), as the invoke view runs it. Floor = `orjson.loads` of the "
        "same body. Naive = `orjson.loads` + a fhir.resources R4B model of every prefetched resource "
        "(no evaluation: a lower bound of that path). The three run round-robin on the same bytes; "
        "times in ms, p50 / p99.",
        "",
        *table(["resources", "body", "cards", "orjson floor", "evaluation", "naive R4B",
                "rounds", "eval / floor", "naive / eval"], rows),
    ]


def _load_row(name: str, load: LoadResult) -> list[str]:
    return [name, str(load.completed), str(load.errors), f"{load.throughput:.0f}",
            ms(load.latency.p50_ms), ms(load.latency.p99_ms)]


def _section_b(http: HttpResult) -> list[str]:
    notes = [f"First error: {load.first_error}" for load in (http.service, http.floor) if load.first_error]
    return [
        f"## B. HTTP over loopback: patient-view, {http.size}-resource prefetch "
        f"({http.body_bytes / 1024:.0f} KiB), concurrency {http.concurrency}",
        "",
        "Both under gunicorn, 2 sync workers, the options of `spinehip serve`; the load generator "
        "(Python threads, keep-alive sessions) runs on the same cores. The two take turns in "
        f"{ROUNDS} rounds, so other work on the machine falls on both alike.",
        "",
        *table(["endpoint", "requests", "errors", "req/s", "p50 ms", "p99 ms"],
               [_load_row("spinehip-cds", http.service),
                _load_row("Flask floor (parse + fixed card)", http.floor)]),
        "",
        f"Throughput ratio: {http.throughput_ratio:.0%} of the framework floor.",
        *notes,
    ]


def _section_c(fb: FallbackResult) -> list[str]:
    rows = [["patient-view call, no prefetch (HTTP)", ms(fb.call.p50_ms), ms(fb.call.p99_ms), "", ""],
            ["every query at once, as the service fans out (`FhirClient.fetch_all`, no service)",
             ms(fb.parallel.p50_ms), ms(fb.parallel.p99_ms), "", ""]]
    rows += [[f"query `{q.query}`", ms(q.timings.p50_ms), ms(q.timings.p99_ms), str(q.pages),
              str(q.resources)] for q in fb.queries]
    return [
        f"## C. FHIR fallback: {fb.size}-resource patient from the local FHIR server (sekmet-fhir)",
        "",
        f"Each query timed alone with the service's FHIR client (pages followed); {fb.call.count} "
        "rounds, interleaved.",
        "",
        *table(["what", "p50 ms", "p99 ms", "pages", "resources"], rows),
        "",
        f"Slowest single query: `{fb.slowest.query}` ({ms(fb.slowest.timings.p50_ms)} ms); all "
        f"queries one after another: {ms(fb.one_after_another_ms)} ms.",
    ]


def _profile_rows(lines: Sequence[ProfileLine]) -> list[list[str]]:
    return [[f"`{p.function}`", f"{p.calls_per_request:g}", ms(p.cumulative_ms), ms(p.own_ms),
             f"{p.share:.0%}"] for p in lines]


def _section_profile(profiles: Sequence[Profile]) -> list[str]:
    out = ["## Profile (cProfile, per request; profiled times run slower than the figures above)"]
    for p in profiles:
        header = ["function", "calls", "cumulative ms", "own ms", "share"]
        out += ["", f"### {p.title}: {ms(p.total_ms)} ms per request over {p.requests} requests",
                "", "Top service functions by cumulative time:", "",
                *table(header, _profile_rows(p.by_cumulative)),
                "", "Top functions (any code) by own time:", "",
                *table(header, _profile_rows(p.by_own_time))]
    return out


def render(results: Results, checks: Sequence[Target]) -> str:
    m = results.machine
    lines = [
        "# Benchmark results",
        "",
        f"Run {results.started:%Y-%m-%d %H:%M} UTC on {m.cpu}, {m.cores} cores, Python {m.python}, "
        f"{m.system}, load average {m.load_average:.2f} at the start. "
        "Command: `make bench` (`python -m benchmarks`)"
        + (" in quick mode: tiny sizes, figures not meaningful." if results.quick else "."),
        "",
    ]
    if results.sizes:
        lines += [*_section_a(results), ""]
    if results.http:
        lines += [*_section_b(results.http), ""]
    if results.fallback:
        lines += [*_section_c(results.fallback), ""]
    for part, why in results.skipped.items():
        lines += [f"Part {part} did not run: {why}", ""]
    lines += ["## Targets", "",
              *table(["target", "measured", "limit", "result"],
                     [[t.name, t.measured, t.limit, t.verdict] for t in checks]), ""]
    if results.profiles:
        lines += [*_section_profile(results.profiles), ""]
    return "\n".join(lines)


def write_results(path: Path, text: str) -> None:
    """Replace the generated part of ``path``, keeping the hand-written notes after the marker."""
    notes = ""
    if path.exists():
        previous = path.read_text(encoding="utf-8")
        if NOTES_MARKER in previous:
            notes = previous.split(NOTES_MARKER, 1)[1].lstrip("\n")
    path.write_text(f"{text}\n{NOTES_MARKER}\n\n{notes}".rstrip("\n") + "\n", encoding="utf-8")
