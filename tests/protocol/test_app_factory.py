"""The app factory takes a rule set and a store built once, or builds its own."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from service import fixtures
from service.app import create_app
from service.cdshooks.response import EXTENSION_KEY
from service.config import PROJECT_ROOT, Settings
from service.store import Store

REQUEST = PROJECT_ROOT / "fixtures" / "requests" / "s01-sciatica-8-weeks.json"


def _settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", demo_patients=False)


def test_a_prebuilt_rule_set_and_store_are_used_as_given(tmp_path, ruleset):
    settings = _settings(tmp_path)
    store = Store.from_settings(settings)
    store.migrate()
    # The factory itself, not tests.support.app.make_app: what it is handed is what is checked.
    app = create_app(settings, ruleset=ruleset, store=store)
    runtime = app.extensions["spinehip"]
    assert runtime.rules.current is ruleset and runtime.store is store
    reply = app.test_client().post("/cds-services/spinehip-patient-view",
                                   json=fixtures.load_request(REQUEST, datetime.now(UTC)))
    assert reply.status_code == 200
    assert reply.get_json()["extension"][EXTENSION_KEY]["rulesetVersion"] == ruleset.full_version
    assert "spine-pattern-mri" in [c["source"]["topic"]["code"] for c in reply.get_json()["cards"]]


def test_without_them_the_factory_compiles_the_same_rules_itself(tmp_path, ruleset):
    # The factory itself: with nothing prebuilt it must compile and migrate on its own.
    runtime = create_app(_settings(tmp_path)).extensions["spinehip"]
    assert runtime.rules.current is not ruleset
    assert runtime.rules.current.full_version == ruleset.full_version


def test_a_prebuilt_rule_set_stating_another_snooze_length_is_refused(tmp_path, ruleset):
    """The given set states the default 30 days; a service snoozing for 14 must not serve it.
    The factory itself: make_app would hand it the set compiled for its settings."""
    fortnight = dataclasses.replace(_settings(tmp_path), snooze_reasons=(("snooze-30d", 14),))
    with pytest.raises(ValueError, match="SPINEHIP_SNOOZE_REASONS"):
        create_app(fortnight, ruleset=ruleset)
    assert create_app(_settings(tmp_path), ruleset=ruleset).extensions["spinehip"].rules.current \
        is ruleset
