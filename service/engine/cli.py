"""``spinehip rules check | test | explain``: the admin's tools for a rule change."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from service.config import Settings
from service.engine.casetests import run_all
from service.engine.dates import instant_or_now
from service.engine.evaluate import Evaluation, evaluate
from service.engine.hooks import HOOKS
from service.engine.ruleset import RuleSet, load_ruleset
from service.engine.whynot import failed_clauses
from service.yamlsource import ConfigFileError


def _print_errors(exc: ConfigFileError, what: str) -> None:
    for line in exc.report_lines():
        print(line, file=sys.stderr)
    print(f"{len(exc.errors)} error(s); {what}", file=sys.stderr)


def _load(args: argparse.Namespace) -> RuleSet | None:
    # The directory and snooze reasons the server would read, so "ok" means it accepts this set.
    settings = Settings.from_env()
    try:
        return load_ruleset(args.rules or settings.rules_dir, settings.snooze_reasons)
    except ConfigFileError as exc:
        _print_errors(exc, "the rule set is not valid")
        return None


def _check(args: argparse.Namespace) -> int:
    ruleset = _load(args)
    if ruleset is None:
        return 1
    # The server also refuses a set its hook files do not name, or hook files it cannot read.
    try:
        args.check_hooks(args.hooks or Settings.from_env().hooks_dir, ruleset.name)
    except ConfigFileError as exc:
        _print_errors(exc, f"the hook files do not serve rule set `{ruleset.name}`")
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
    shadow = {r.id for r in ruleset.rules if r.spec.mode == "shadow"}
    failed = 0
    current = None
    for result in results:
        if result.rule_id != current:
            current = result.rule_id
            # Its cases pass on what it would do, yet no clinician sees its card.
            note = " [shadow: evaluated, no card shown]" if current in shadow else ""
            print(f"{result.rule_id} ({result.location}){note}")
        mark = "PASS" if result.passed else "FAIL"
        print(f"  {mark} {result.case_id}: {result.name}")
        for problem in result.problems:
            print(f"       {problem}")
        failed += not result.passed
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _fact_lines(trace: dict[str, Any]) -> list[str]:
    out = []
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
    return out


def _derived_lines(trace: dict[str, Any]) -> list[str]:
    out = []
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
    return out


def _rule_lines(entry: dict[str, Any]) -> list[str]:
    by = f" by {entry['suppressedBy']}" if entry.get("suppressedBy") else ""
    out = [f"  {entry['rule']} (precedence {entry['precedence']}, {entry['mode']}, "
           f"status {entry['ruleStatus']}): {entry['status']}{by}"]
    if entry.get("failedClause"):
        out.append(f"    failed: {entry['failedClause']}")
    for match in entry.get("matched", []):
        out.append(f"    {match['ref']} {match['display']} {match.get('date', '')}".rstrip())
    out += [f"    limit: {limit}" for limit in entry["limits"]]
    out += [f"    offers {r['code']}: {r['display']}" for r in entry.get("overrideReasons", [])]
    return out


def explain_text(trace: dict[str, Any], version: str) -> str:
    """The explained trace laid out for a person: facts, derived values, every rule's outcome."""
    out = [f"rule set {version}, evaluated at {trace['now']} ({trace['hook']})",
           f"patient {trace['patient']['ref']}, age {trace['patient']['ageYears']}", "", "FACTS"]
    out += _fact_lines(trace)
    out += ["", "SCORES AND DERIVED FACTS", *_derived_lines(trace), "", "RULES"]
    for entry in trace["rules"]:
        out += _rule_lines(entry)
    return "\n".join(out)


def explained_trace(ruleset: RuleSet, ev: Evaluation, failed: dict[str, str]) -> dict[str, Any]:
    """The evaluation's trace with each rule's status and limits, for a card the override reasons
    it offers (as the clinician reads them, snooze length filled in), and for a rule that did
    not fire the clause that failed."""
    specs = {r.id: r.spec for r in ruleset.rules}
    rules = []
    for entry in ev.trace["rules"]:
        spec = specs[entry["rule"]]
        extra: dict[str, Any] = {"ruleStatus": spec.status, "limits": list(spec.limits)}
        if entry.get("status") == "did not fire" and entry["rule"] in failed:
            extra["failedClause"] = failed[entry["rule"]]
        if entry.get("status") == "card":
            extra["overrideReasons"] = [{"code": c, "display": ruleset.override_reasons[c]}
                                        for c in spec.override_reasons]
        rules.append({**entry, **extra})
    return {**ev.trace, "rules": rules}


def _inputs(path: str, now: datetime) -> dict[str, Any]:
    """Evaluation inputs from a patient Bundle or a CDS Hooks request (prefetch and drafts)."""
    from service import fixtures

    data = fixtures.read_json(path)
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        return {"resources": fixtures.bundle_resources(fixtures.load_bundle(path, now))}
    if not isinstance(data, dict) or not isinstance(data.get("hook"), str):
        raise fixtures.FixtureError(path, "$", "expected a Bundle or a CDS Hooks request")
    return _request_inputs(fixtures.load_request(path, now), path)


def _request_inputs(request: dict[str, Any], path: str) -> dict[str, Any]:
    """A request's prefetched resources, drafts and selections, each member checked for the
    shape the rules read, so a malformed file is an error naming the member, not a traceback.
    Malformed Bundle entries are skipped, as the service skips them."""
    from service.fixtures import FixtureError, bundle_resources

    def member(where: dict[str, Any], name: str, kind: type, at: str) -> Any:
        value = where.get(name)
        if value is not None and not isinstance(value, kind):
            raise FixtureError(path, f"$.{at}{name}", f"must be {_KIND_NAMES[kind]}")
        return value if value is not None else kind()

    hook = request["hook"]
    if hook not in HOOKS:
        raise FixtureError(path, "$.hook", _unknown_hook(hook))
    context = member(request, "context", dict, "")
    resources: list[dict[str, Any]] = []
    for key, value in member(request, "prefetch", dict, "").items():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            resources += bundle_resources(value)
        elif isinstance(value, dict):
            resources.append(value)
        elif value is not None:  # null: a prefetch the EHR could not fill
            raise FixtureError(path, f"$.prefetch.{key}", "must be a FHIR resource or null")
    drafts = member(context, "draftOrders", dict, "context.")
    if drafts and drafts.get("resourceType") != "Bundle":
        raise FixtureError(path, "$.context.draftOrders", "must be a FHIR Bundle")
    member(drafts, "entry", list, "context.draftOrders.")
    selections = member(context, "selections", list, "context.")
    if not all(isinstance(s, str) for s in selections):
        raise FixtureError(path, "$.context.selections", "must be an array of references")
    patient_id = context.get("patientId")
    return {"resources": resources, "hook": hook, "draft_orders": bundle_resources(drafts),
            "selections": selections,
            "patient_id": patient_id if isinstance(patient_id, str) else None}


_KIND_NAMES = {dict: "an object", list: "an array"}


def _unknown_hook(hook: str) -> str:
    return f"hook `{hook}` is not one of the hooks the rules know: {', '.join(sorted(HOOKS))}"


def _explain(args: argparse.Namespace) -> int:
    ruleset = _load(args)
    if ruleset is None:
        return 1
    now = instant_or_now(args.at)
    try:
        inputs = _inputs(args.file, now)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    request_hook = inputs.pop("hook", "patient-view")
    if args.hook is not None and args.hook not in HOOKS:
        print(f"error: {_unknown_hook(args.hook)}", file=sys.stderr)
        return 2
    resources = inputs.pop("resources")
    when = {"now": now, "hook": args.hook or request_hook, **inputs}
    ev = evaluate(ruleset, resources, **when)
    failed = failed_clauses(ruleset, resources, **when)
    trace = explained_trace(ruleset, ev, failed)
    print(json.dumps(trace, indent=2) if args.json else explain_text(trace, ev.ruleset_version))
    return 0


def register(subparsers: Any, *, check_hooks: Callable[[Path, str], object]) -> Any:
    """Add the ``rules`` command group to the ``spinehip`` CLI; returns its subcommands.

    ``check_hooks(hooks_dir, ruleset_name)`` raises ConfigFileError for hook files the server
    would refuse with this set; it is passed in because the engine does not read the protocol's
    service files."""
    rules = subparsers.add_parser("rules", help="check, test and explain the rule files")
    sub = rules.add_subparsers(dest="rules_command", required=True)
    for name, func, text in (
        ("check", _check, "validate the rule files"),
        ("test", _test, "run every test case written beside the rules"),
        ("explain", _explain, "show facts, scores and why each rule did or did not fire"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--rules", type=Path, default=None,
                         help="rules directory (default: SPINEHIP_RULES_DIR, else the bundled rules)")
        cmd.set_defaults(func=func)
        if name == "check":
            cmd.add_argument("--hooks", type=Path, default=None,
                             help="hook files (default: SPINEHIP_HOOKS_DIR, else the bundled hooks)")
            cmd.set_defaults(check_hooks=check_hooks)
        if name == "explain":
            cmd.add_argument("file", help="a patient Bundle or a CDS Hooks request JSON file "
                                           "(date tokens allowed; a request's drafts included)")
            cmd.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
            cmd.add_argument("--hook", help="the hook (default: the request's, else patient-view)")
            cmd.add_argument("--json", action="store_true", help="print the raw trace as JSON")
    return sub
