"""``spinehip rules impact``: what a rule change does to patients, before it goes live.

Exit status: 0 nothing changed, 1 some card or PAMA rating changed, 2 error (invalid rule set,
unreadable source, or patients that could not be evaluated: then the comparison is incomplete).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from service.config import FHIR_TOKEN_ENV, Settings, fhir_token
from service.engine.dates import instant_or_now
from service.impact.progress import ProgressBar
from service.impact.replay import DEFAULT_PARTITION, ENGINES, load_workload, replay
from service.impact.report import render_json, render_text
from service.impact.sources import DEMO, open_source
from service.yamlsource import ConfigFileError


def _token(args: argparse.Namespace) -> str | None:
    if args.fhir_token_file:
        return Path(args.fhir_token_file).read_text(encoding="utf-8").strip() or None
    return fhir_token(None)


def _impact(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rules = args.rules or settings.rules_dir
    now = instant_or_now(args.at)
    try:
        workload = load_workload(args.against, rules, hooks_dir=args.hooks or settings.hooks_dir,
                                 fixtures_dir=args.fixtures or settings.fixtures_dir, now=now,
                                 snooze_reasons=settings.snooze_reasons)
    except ConfigFileError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(exc.errors)} error(s); no impact computed", file=sys.stderr)
        return 2
    fixtures_dir = args.fixtures or settings.fixtures_dir
    try:
        with open_source(args.patients, fixtures_dir=fixtures_dir, now=now,
                         services=list(workload.services), token=_token(args)) as source:
            show = sys.stderr.isatty() if args.progress is None else args.progress
            bar = ProgressBar(source.total) if show else None
            try:
                impact = replay(workload, source.records, engine=args.engine, jobs=args.jobs,
                                scheduler=args.scheduler, progress=bar,
                                partition_size=args.partition_size
                                or partition_size(source.total, args.jobs))
            finally:
                if bar:
                    bar.close()
            description = source.description
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    header: dict[str, Any] = {
        "against": f"{args.against} ({workload.old.full_version})",
        "rules": f"{rules} ({workload.new.full_version})",
        "patients from": description,
        "evaluated at": now.isoformat(),
    }
    if args.json:
        print(json.dumps(render_json(impact, header), indent=2))
    else:
        print(render_text(impact, header))
    if impact.errors:
        return 2
    return 1 if impact.changed else 0


def partition_size(total: int | None, jobs: int | None) -> int:
    """Patients per task: small populations still spread over every worker, a few tasks each."""
    if not total:
        return DEFAULT_PARTITION
    workers = jobs or os.cpu_count() or 1
    return max(1, min(DEFAULT_PARTITION, math.ceil(total / (4 * workers))))


def register(rules_subparsers: Any) -> None:
    """Add ``impact`` to the ``spinehip rules`` command group."""
    cmd = rules_subparsers.add_parser(
        "impact", help="compare two rule sets on the same patients: which cards change for whom",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("--against", type=Path, required=True, metavar="OLD_RULES_DIR",
                     help="the rule set to compare with (e.g. the one serving now)")
    cmd.add_argument("--rules", type=Path, metavar="NEW_DIR",
                     help="the changed rule set (default: SPINEHIP_RULES_DIR or the bundled rules/)")
    cmd.add_argument("--patients", default=DEMO, metavar="SOURCE",
                     help="`demo` (default), a directory of FHIR Bundles, a directory of Bulk FHIR "
                          "NDJSON files, or a FHIR base URL (token from $" + FHIR_TOKEN_ENV + ")")
    cmd.add_argument("--fhir-token-file", metavar="FILE",
                     help="read the FHIR server's bearer token from FILE instead of $" + FHIR_TOKEN_ENV)
    cmd.add_argument("--at", help="evaluation time, ISO 8601 (default: now); the same for both sets")
    cmd.add_argument("--hooks", type=Path, help="services directory (default: the bundled hooks/)")
    cmd.add_argument("--fixtures", type=Path,
                     help="fixtures directory: demo patients and the draft panel")
    cmd.add_argument("--json", action="store_true", help="print JSON for machines")
    cmd.add_argument("--engine", choices=ENGINES, default="local",
                     help="local worker processes (default) or a Dask cluster")
    cmd.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786")
    cmd.add_argument("--jobs", type=int, help="local worker processes (default: one per CPU)")
    cmd.add_argument("--partition-size", type=int,
                     help=f"patients per task (default: up to {DEFAULT_PARTITION}, fewer for small "
                          "populations so every worker gets some)")
    progress = cmd.add_mutually_exclusive_group()
    progress.add_argument("--progress", action="store_true", default=None,
                          help="show the progress bar on stderr (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    cmd.set_defaults(func=_impact)
