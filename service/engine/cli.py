"""``spinehip rules check | test | explain``: the admin's tools for a rule change."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.config import Settings
from service.engine.casetests import run_all
from service.engine.dates import instant_or_now
from service.engine.evaluate import Evaluation, evaluate
from service.engine.ruleset import RuleSet, load_ruleset
from service.yamlsource import ConfigFileError


def _load(args: argparse.Namespace) -> RuleSet | None:
    # The directory the server would read, so "ok" means the server accepts this set.
    rules_dir = args.rules or Settings.from_env().rules_dir
    try:
        return load_ruleset(rules_dir)
    except ConfigFileError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} error(s); the rule set is not valid", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    ruleset = _load(args)
    if ruleset is None:
        return 1
    print(f"ok: {ruleset.name} {ruleset.full_version}: {len(ruleset.rules)} rules, "
          f"{len(ruleset.valuesets)} value sets, {len(ruleset.findings)} findings, "
          f"{len(ruleset.cases)} test cases")
    return 0


def _test(args: argparse.Namespace) -> int:
    ruleset = _load(args)
    if ruleset is None:
        return 1
    results = run_all(ruleset)
    failed = 0
    current = None
    for result in results:
        if result.rule_id != current:
            current = result.rule_id
            print(f"{result.rule_id} ({result.location})")
        mark = "PASS" if result.passed else "FAIL"
        print(f"  {mark} [{result.index}] {result.name}")
        for problem in result.problems:
            print(f"       {problem}")
        failed += not result.passed
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def explain_text(ev: Evaluation) -> str:
    """The trace laid out for a person: facts, derived values, then every rule's outcome."""
    trace: dict[str, Any] = ev.trace
    out = [f"rule set {ev.ruleset_version}, evaluated at {trace['now']} ({trace['hook']})",
           f"patient {trace['patient']['ref']}, age {trace['patient']['ageYears']}", "", "FACTS"]
    for fact in trace["facts"]:
        notes = [k for k in ("absent", "draft") if fact.get(k)]
        notes += [fact["note"]] if fact.get("note") else []
        notes += ["not current"] if fact.get("current") is False else []
        value = f" = {fact['value']}" if "value" in fact else ""
        out.append(f"  {fact['ref']}: {fact['display']}{value} [{fact['status']}] "
                   f"{fact.get('date', 'no date')} {' '.join(notes)}".rstrip())
    for kind in ("skipped", "ignored"):
        for item in trace["input"].get(kind, []):
            out.append(f"  {kind}: {item['ref']}: {item['reason']}")
    out += ["", "SCORES AND DERIVED FACTS"]
    for name, value in trace["derived"].items():
        if "score" in value:
            out.append(f"  {name} = {value['score']:g}")
            out += [f"    +{c['weight']:g} {c['feature']} ({', '.join(c['matched'])})"
                    for c in value["components"]]
        elif "days" in value:
            out.append(f"  {name} = {value['days']} days" if value["days"] is not None
                       else f"  {name} = unknown")
        else:
            out.append(f"  {name} = {value['percent']}%" if value["percent"] is not None
                       else f"  {name} = unknown")
    out += ["", "RULES"]
    for entry in trace["rules"]:
        by = f" by {entry['suppressedBy']}" if entry.get("suppressedBy") else ""
        out.append(f"  {entry['rule']} (precedence {entry['precedence']}, {entry['mode']}): "
                   f"{entry['status']}{by}")
        for match in entry.get("matched", []):
            out.append(f"    {match['ref']} {match['display']} {match.get('date', '')}".rstrip())
    return "\n".join(out)


def _explain(args: argparse.Namespace) -> int:
    from service import fixtures

    ruleset = _load(args)
    if ruleset is None:
        return 1
    now = instant_or_now(args.at)
    try:
        bundle = fixtures.load_bundle(args.bundle, now)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ev = evaluate(ruleset, fixtures.bundle_resources(bundle), now=now, hook=args.hook)
    if args.json:
        print(json.dumps(ev.trace, indent=2))
    else:
        print(explain_text(ev))
    return 0


def register(subparsers: Any) -> Any:
    """Add the ``rules`` command group to the ``spinehip`` CLI; returns its subcommands."""
    rules = subparsers.add_parser("rules", help="check, test and explain the rule files")
    sub = rules.add_subparsers(dest="rules_command", required=True)
    for name, func, text in (
        ("check", _check, "validate the rule files"),
        ("test", _test, "run every test case written beside the rules"),
        ("explain", _explain, "show facts, scores and the rule trace for a Bundle"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--rules", type=Path, default=None,
                         help="rules directory (default: SPINEHIP_RULES_DIR, else the bundled rules)")
        cmd.set_defaults(func=func)
        if name == "explain":
            cmd.add_argument("bundle", help="a FHIR Bundle JSON file (date tokens allowed)")
            cmd.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
            cmd.add_argument("--hook", default="patient-view")
            cmd.add_argument("--json", action="store_true", help="print the raw trace as JSON")
    return sub
