"""The trusted-clients file: valid files load, mistakes are reported together with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import PACKAGE_DIR
from service.security.trust import load_trust_config
from service.yamlsource import ConfigFileError
from tests.support.security import FIXTURES, ISSUER

SANDBOX_FILE = PACKAGE_DIR / "security" / "sandbox-trusted-clients.yaml"


def errors_of(path: Path, production: bool) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load_trust_config(path, production)
    return [str(e) for e in caught.value.errors]


def test_valid_file_loads_with_default_algorithms(trust_file: Path) -> None:
    config = load_trust_config(trust_file, production=True)
    client = config.clients[ISSUER]
    assert client.algorithms == {"ES384", "RS384"}
    assert client.jku is not None and client.jku.startswith("http://127.0.0.1:")


def test_every_mistake_is_reported_with_its_line() -> None:
    path = FIXTURES / "trusted-clients-mistakes.yaml"
    errors = errors_of(path, production=False)
    assert len(errors) == 1, errors  # structural errors stop before semantic checks
    assert f"{path}:9:" in errors[0] and "unknown key `fhir_server`" in errors[0]
    assert "did you mean `fhir_servers`" in errors[0]


def test_semantic_mistakes_are_all_reported(tmp_path: Path) -> None:
    text = (FIXTURES / "trusted-clients-mistakes.yaml").read_text()
    fixed = tmp_path / "t.yaml"
    fixed.write_text(text.replace("fhir_server:", "fhir_servers:"))
    errors = errors_of(fixed, production=False)
    assert any(":5:" in e and "'HS256' is not allowed" in e for e in errors), errors
    assert any(":10:" in e and "exactly one of `jku` or `jwks`" in e for e in errors), errors
    assert len(errors) == 2


def test_production_refuses_plain_http_and_development_only_clients() -> None:
    path = FIXTURES / "trusted-clients-production-only-errors.yaml"
    load_trust_config(path, production=False)
    errors = errors_of(path, production=True)
    assert any(":4:" in e and "jku must use https" in e for e in errors), errors
    assert any(":5:" in e and "FHIR server must use https" in e for e in errors), errors
    assert any(":8:" in e and "development only" in e for e in errors), errors


def test_inline_jwks_refuses_secrets_and_duplicate_kids() -> None:
    errors = errors_of(FIXTURES / "trusted-clients-inline-jwks-bad.yaml", production=False)
    assert any(":6:" in e and "only public keys" in e for e in errors), errors
    assert any(":8:" in e and "duplicate kid 'dup'" in e for e in errors), errors


def test_sandbox_entry_is_development_only() -> None:
    config = load_trust_config(SANDBOX_FILE, production=False)
    assert "https://sandbox.cds-hooks.org" in config.clients
    assert any("development only" in e for e in errors_of(SANDBOX_FILE, production=True))


def test_empty_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert errors_of(empty, production=False)
