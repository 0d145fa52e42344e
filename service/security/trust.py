"""The trusted-clients file: which CDS clients may call, with which keys, for which FHIR servers.

CDS Hooks says to allowlist clients by ``iss`` and ``jku`` together; keys are never fetched from a
``jku`` that is not in this file, otherwise anyone could sign tokens with keys they host. Each
client also lists the FHIR bases its access tokens may be sent to (SEC-14). Mistakes are reported
all at once, each with file, line and a hint.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.yamlsource import (
    ConfigError,
    ConfigFileError,
    YamlDocument,
    did_you_mean,
    load_yaml,
    pydantic_errors,
)

#: Asymmetric JWS algorithms a client may be allowed; ``none`` and HMAC are never among them.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("ES384", "RS384")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class _ClientEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    iss: str = Field(min_length=1)
    jku: str | None = None
    jwks: dict[str, Any] | None = None
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS), min_length=1)
    tenants: list[str] | None = None
    fhir_servers: list[str] = Field(default_factory=list)
    development_only: bool = False


class _TrustFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    clients: list[_ClientEntry] = Field(min_length=1)
    jwks_ttl_seconds: int = Field(default=600, gt=0)
    jwks_refetch_interval_seconds: int = Field(default=30, ge=0)
    max_token_age_seconds: int = Field(default=3600, gt=0)


@dataclass(frozen=True)
class TrustedClient:
    """One allowlisted issuer: exactly one of ``jku`` (fetched) or ``jwks`` (configured keys)."""

    iss: str
    jku: str | None
    jwks: dict[str, Any] | None
    algorithms: frozenset[str]
    tenants: frozenset[str] | None
    fhir_servers: tuple[str, ...]


@dataclass(frozen=True)
class TrustConfig:
    """The whole validated file."""

    clients: dict[str, TrustedClient]
    jwks_ttl_seconds: int
    jwks_refetch_interval_seconds: int
    max_token_age_seconds: int


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals: traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(url: str, require_https: bool, allow_loopback_http: bool) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    if parts.fragment:
        return "must not have a #fragment"
    loopback_ok = allow_loopback_http and is_loopback_host(parts.hostname)
    if require_https and parts.scheme != "https" and not loopback_ok:
        return "must use https in production"
    return None


def _jwks_problems(doc: YamlDocument, loc: tuple[str | int, ...], jwks: dict[str, Any]) -> list[ConfigError]:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        return [doc.error(loc, "`jwks` needs a non-empty `keys` list", "a JWK Set (RFC 7517)")]
    errors: list[ConfigError] = []
    kids: set[str] = set()
    for i, key in enumerate(keys):
        here = (*loc, "keys", i)
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            errors.append(doc.error(here, "every key needs a string `kid`"))
            continue
        if key["kid"] in kids:
            errors.append(doc.error(here, f"duplicate kid {key['kid']!r}"))
        kids.add(key["kid"])
        if key.get("kty") == "oct" or "d" in key:
            errors.append(doc.error(here, "only public keys belong here", "drop private members"))
            continue
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError) as exc:
            errors.append(doc.error(here, f"key cannot be used: {exc}"))
    return errors


def _entry_problems(
    doc: YamlDocument, index: int, entry: _ClientEntry, production: bool
) -> list[ConfigError]:
    loc: tuple[str | int, ...] = ("clients", index)
    errors: list[ConfigError] = []
    if (entry.jku is None) == (entry.jwks is None):
        errors.append(doc.error(loc, "give exactly one of `jku` or `jwks`",
                                "`jku` is the URL of the client's JWK Set"))
    if entry.jku is not None:
        problem = _url_problem(entry.jku, production, allow_loopback_http=True)
        if problem:
            errors.append(doc.error((*loc, "jku"), f"jku {problem}"))
    if entry.jwks is not None:
        errors.extend(_jwks_problems(doc, (*loc, "jwks"), entry.jwks))
    for i, alg in enumerate(entry.algorithms):
        if alg not in ASYMMETRIC_ALGORITHMS:
            errors.append(doc.error(
                (*loc, "algorithms", i), f"algorithm {alg!r} is not allowed",
                "asymmetric only: " + ", ".join(sorted(ASYMMETRIC_ALGORITHMS)),
            ))
    for i, url in enumerate(entry.fhir_servers):
        problem = _url_problem(url, production, allow_loopback_http=False)
        if problem is None and urlsplit(url).query:
            problem = "must be a base URL without a query"
        if problem:
            errors.append(doc.error((*loc, "fhir_servers", i), f"FHIR server {problem}"))
    if entry.development_only and production:
        errors.append(doc.error(
            (*loc, "development_only"), f"client {entry.iss!r} is for development only",
            "remove it from the production trust file",
        ))
    return errors


def _with_spelling_hint(error: ConfigError) -> ConfigError:
    """Suggest the nearest valid key for a misspelt one (``fhir_server`` -> ``fhir_servers``)."""
    if error.hint or not error.message.startswith("unknown key"):
        return error
    model = _ClientEntry if error.key.startswith("clients[") else _TrustFile
    word = error.key.rsplit(".", 1)[-1]
    return dataclasses.replace(error, hint=did_you_mean(word, model.model_fields))


def load_trust_config(path: str | Path, production: bool) -> TrustConfig:
    """Read and check the file; raise ConfigFileError listing every problem found."""
    doc = load_yaml(path)
    try:
        parsed = _TrustFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigFileError([_with_spelling_hint(e) for e in pydantic_errors(doc, exc)]) from None
    errors: list[ConfigError] = []
    clients: dict[str, TrustedClient] = {}
    for index, entry in enumerate(parsed.clients):
        errors.extend(_entry_problems(doc, index, entry, production))
        if entry.iss in clients:
            errors.append(doc.error(("clients", index, "iss"), f"duplicate iss {entry.iss!r}"))
        clients[entry.iss] = TrustedClient(
            iss=entry.iss,
            jku=entry.jku,
            jwks=entry.jwks,
            algorithms=frozenset(entry.algorithms),
            tenants=frozenset(entry.tenants) if entry.tenants is not None else None,
            fhir_servers=tuple(url.rstrip("/") for url in entry.fhir_servers),
        )
    if errors:
        raise ConfigFileError(errors)
    return TrustConfig(
        clients=clients,
        jwks_ttl_seconds=parsed.jwks_ttl_seconds,
        jwks_refetch_interval_seconds=parsed.jwks_refetch_interval_seconds,
        max_token_age_seconds=parsed.max_token_age_seconds,
    )
