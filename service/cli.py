"""The ``spinehip`` command: serve, evaluate a request file, and the admin subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service import fixtures_load, report
from service.cdshooks.services import load_services
from service.config import Settings, read_log_level
from service.engine import cli as engine_cli
from service.engine.dates import instant_or_now
from service.impact import cli as impact_cli
from service.yamlsource import ConfigFileError, reported


def _serve(args: argparse.Namespace) -> int:
    """Run under gunicorn: Flask's development server is never used to serve.

    Every line is JSON from the first one on, start-up failures included, so a log collector
    sees why a pod did not start.
    """
    from service import metrics_dir

    shared = metrics_dir.prepare()  # before any worker records a sample
    from service.logging_setup import configure_logging

    configure_logging()
    log = logging.getLogger("service.serve")
    try:
        from service.server import run_gunicorn

        return run_gunicorn(host=args.host, port=args.port, workers=args.workers, timeout=args.timeout)
    except (ConfigFileError, ValueError) as exc:
        errors = ([e.as_dict() for e in reported(exc.errors)] if isinstance(exc, ConfigFileError)
                  else [str(exc)])
        log.error("the service cannot start: %s", exc, extra={"fields": {
            "event": "startup_failed", "errors": errors}})
        return 2
    finally:
        shared.remove()


def _evaluate(args: argparse.Namespace) -> int:
    """Answer one hook request file as the HTTP service would, without HTTP: the same data
    source, snoozes and audit (when ``DATABASE_URL`` names a store) and the same response bytes."""
    from functools import partial

    from service import fixtures
    from service.cdshooks.errors import CdsError
    from service.cdshooks.request import parse_hook_request, parse_json_body
    from service.cdshooks.response import response_bytes
    from service.cdshooks.sources import bind_source
    from service.engine import load_ruleset
    from service.fhir_client import FhirClient
    from service.pipeline import answer_hook
    from service.security.fhir_binding import fhir_server_refusal
    from service.store import Store

    settings = Settings.from_env()
    now = instant_or_now(args.at)
    ruleset = load_ruleset(settings.rules_dir, settings.snooze_reasons)
    services = {s.id: s for s in load_services(settings.hooks_dir, ruleset.name)}
    if args.service is not None and args.service not in services:
        print(f"error: no service `{args.service}`; the services are: {', '.join(sorted(services))}",
              file=sys.stderr)
        return 2
    try:
        raw = Path(args.request).read_bytes()
    except OSError as exc:
        print(f"error: cannot read the request file {args.request}: {exc.strerror}", file=sys.stderr)
        return 2
    store = Store.from_settings(settings) if settings.store_configured else None
    fhir = FhirClient.from_settings(settings)
    try:
        body = fixtures.render(parse_json_body(raw), now, source=args.request)
        hook = body.get("hook") if isinstance(body, dict) else None
        service = services.get(args.service) if args.service else next(
            (s for s in services.values() if s.hook == hook), None)
        if service is None:
            print(f"error: no service answers hook {hook!r}", file=sys.stderr)
            return 2
        if store is not None:
            store.migrate()
        request = parse_hook_request(body, service)
        source = bind_source(
            request,
            now=now,
            fhir=fhir,
            policy=partial(fhir_server_refusal, client=None, settings=settings),
            demo_dir=settings.fixtures_dir if settings.demo_patients else None,
        )
        answer = answer_hook(
            service, request, ruleset=ruleset, now=now, source=source,
            store=store,
        )
    except CdsError as exc:
        sys.stdout.buffer.write(response_bytes(exc.outcome()))
        return 1
    finally:
        fhir.close()
        if store is not None:
            store.close()
    sys.stdout.buffer.write(response_bytes(answer.body))
    for kind in ("excluded", "uncertain"):
        counts = answer.quality[kind]
        if counts:
            listed = ", ".join(f"{reason} {n}" for reason, n in counts.items())
            print(f"records {kind}: {listed}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinehip", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the CDS Hooks API under gunicorn")
    serve.add_argument("--host", default=os.environ.get("SPINEHIP_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("SPINEHIP_PORT", "8080")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("SPINEHIP_WORKERS", "2")))
    serve.add_argument("--timeout", type=int, default=30, help="worker timeout in seconds")
    serve.set_defaults(func=_serve)

    evaluate = sub.add_parser("evaluate", help="print the response for a hook request file")
    evaluate.add_argument("request", help="a CDS Hooks request JSON file (relative date tokens allowed)")
    evaluate.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
    evaluate.add_argument("--service", help="service id (default: the one answering the request's hook)")
    evaluate.set_defaults(func=_evaluate)

    fixtures_load.register(sub)
    report.register(sub)
    impact_cli.register(engine_cli.register(sub, check_hooks=load_services))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Quieter than the server by default: a command's own output is what the admin reads.
        logging.basicConfig(level=read_log_level(os.environ, "WARNING"))
        return args.func(args)
    except ConfigFileError as exc:
        for line in exc.report_lines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
