"""The Flask app factory: configuration in, a wired service out.

Everything expensive (services, rule set, database, FHIR session) is built here once and
handed to the views through ``app.extensions``; no view reads configuration from globals.
"""

from __future__ import annotations

import logging

from flask import Flask

from service import cards, logging_setup, metrics, security
from service.cdshooks.services import load_services, rules_for
from service.config import Settings
from service.engine import RuleRegistry, RuleSet, load_ruleset
from service.fhir_client import FhirClient
from service.store import Store
from service.web import admin, cors, discovery, errors, feedback, health, invoke, workbench
from service.web.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, fhir: FhirClient | None = None,
               ruleset: RuleSet | None = None, store: Store | None = None) -> Flask:
    """Build the service; ConfigFileError for invalid hooks or rules: never start half-configured.

    ``ruleset`` (already compiled from ``settings.rules_dir``) and ``store`` (already migrated)
    let a caller that builds many apps, such as the tests, build them once.
    """
    settings = settings or Settings.from_env()
    if not settings.production:
        log.warning("running in development mode: JWTs optional, any fhirServer allowed")
    app = Flask(__name__, static_folder=None)  # every route is one openapi.yaml describes
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    ruleset = ruleset or load_ruleset(settings.rules_dir, settings.snooze_reasons)
    if ruleset.snooze_days != dict(settings.snooze_reasons):
        raise ValueError("the rule set given was compiled for other snooze reasons than "
                         "SPINEHIP_SNOOZE_REASONS: its cards would state another snooze length")
    services = {s.id: s for s in load_services(settings.hooks_dir, ruleset.name)}
    # Every reload (admin call, workbench, file watch, SIGHUP) is checked against the hooks too.
    loader = rules_for(services.values(), settings.snooze_reasons)
    rules = RuleRegistry(settings.rules_dir, loader=loader,
                         on_reload=lambda ok: metrics.count_rule_reload(success=ok), initial=ruleset)
    metrics.declare_services(services)
    cards.warm_up()
    if store is None:
        store = Store.from_settings(settings)
        store.migrate()
    fhir = fhir or FhirClient.from_settings(settings)
    app.extensions["spinehip"] = Runtime(
        settings=settings,
        services=services,
        rules=rules,
        store=store,
        fhir=fhir,
    )

    logging_setup.init_app(app)
    errors.init_app(app)
    cors.init_app(app, settings.cors_origins)
    security.init_app(app, settings, replay=store)
    for blueprint in (discovery.bp, invoke.bp, feedback.bp, health.bp, metrics.bp, admin.bp,
                      workbench.bp):
        app.register_blueprint(blueprint)
    return app
