"""Configuration from the environment: defaults that run, and errors that name the variable."""

from __future__ import annotations

import pytest

from service.config import Settings, fhir_token


def test_empty_environment_gives_the_embedded_development_defaults():
    settings = Settings.from_env({})
    assert settings.mode == "development" and not settings.production
    assert settings.demo_patients
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("var/spinehip.db")
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.cors_origins == ("*",)


@pytest.mark.parametrize("env", [{}, {"DATABASE_URL": ""}])
def test_no_database_url_means_no_store_is_configured_though_the_server_has_its_default(env):
    settings = Settings.from_env(env)
    assert not settings.store_configured and settings.database_url.startswith("sqlite:///")


def test_a_database_url_configures_the_store():
    settings = Settings.from_env({"DATABASE_URL": "postgresql://cds@127.0.0.1/cds"})
    assert settings.store_configured and settings.database_url == "postgresql://cds@127.0.0.1/cds"


AUDIT_SECRET = "a-real-audit-secret-of-32-or-more-bytes"


def test_production_turns_demo_patients_off_and_needs_an_audit_secret():
    with pytest.raises(ValueError, match="SPINEHIP_AUDIT_SECRET"):
        Settings.from_env({"SPINEHIP_MODE": "production"})
    settings = Settings.from_env({"SPINEHIP_MODE": "production", "SPINEHIP_AUDIT_SECRET": AUDIT_SECRET})
    assert settings.production and not settings.demo_patients


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPINEHIP_AUDIT_SECRET", "REPLACE-ME-with-32-or-more-random-bytes"),
        ("SPINEHIP_AUDIT_SECRET", "k" * 31),
        ("SPINEHIP_ADMIN_TOKEN", "REPLACE-ME-with-a-long-random-admin-token"),
        ("SPINEHIP_ADMIN_TOKEN", "admin"),
        ("DATABASE_URL", "postgresql+psycopg://spinehip:REPLACE-ME@db.example.internal:5432/spinehip"),
    ],
)
def test_production_refuses_placeholder_and_short_secrets_naming_the_variable(name, value):
    env = {"SPINEHIP_MODE": "production", "SPINEHIP_AUDIT_SECRET": AUDIT_SECRET, name: value}
    with pytest.raises(ValueError, match=name):
        Settings.from_env(env)
    assert Settings.from_env({**env, "SPINEHIP_MODE": "development"}).mode == "development"


def test_production_accepts_secrets_of_32_bytes():
    settings = Settings.from_env({
        "SPINEHIP_MODE": "production", "SPINEHIP_AUDIT_SECRET": "k" * 32, "SPINEHIP_ADMIN_TOKEN": "t" * 32,
    })
    assert settings.audit_secret == "k" * 32 and settings.admin_token == "t" * 32


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPINEHIP_MODE", "staging"),
        ("SPINEHIP_MAX_BODY_BYTES", "lots"),
        ("SPINEHIP_FHIR_TIMEOUT", "-1"),
        ("SPINEHIP_RULES_WATCH", "often"),
        ("SPINEHIP_AUDIT_PATIENT_ID", "encrypt"),
        ("SPINEHIP_FHIR_MAX_RESPONSE_BYTES", "0"),
        ("SPINEHIP_FHIR_MAX_TOTAL_BYTES", "a lot"),
    ],
)
def test_invalid_value_is_refused_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_values_are_read_and_normalised():
    settings = Settings.from_env({
        "SPINEHIP_PUBLIC_BASE_URL": "https://cds.example.org/",
        "SPINEHIP_CORS_ORIGINS": "https://a.example.org, https://b.example.org",
        "SPINEHIP_RULES_WATCH": "0",
        "SPINEHIP_FHIR_DEADLINE": "2.5",
    })
    assert settings.public_base_url == "https://cds.example.org"
    assert settings.cors_origins == ("https://a.example.org", "https://b.example.org")
    assert settings.rules_watch_s == 0
    assert settings.fhir_deadline_s == 2.5



def test_a_commands_fhir_token_is_the_one_given_else_the_environments():
    env = {"SPINEHIP_FHIR_TOKEN": "from-env"}
    assert fhir_token("given", env) == "given"
    assert fhir_token(None, env) == "from-env"
    assert fhir_token(None, {}) is None
    assert fhir_token("", {"SPINEHIP_FHIR_TOKEN": ""}) is None
