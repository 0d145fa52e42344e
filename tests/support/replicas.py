"""Two production ``spinehip serve`` processes on one PostgreSQL database, as replicas behind a
load balancer run: JWT required, keys from a loopback JWK Set, each replica on its own port.

Each replica is told its own public base URL, so a token names the replica it was signed for in
``aud``; a token meant for both lists both URLs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.processes import RunningServer, free_port, start_spinehip
from tests.support.security import (
    EC_KID,
    ISSUER,
    TENANT,
    JwksServer,
    bearer,
    public_jwk,
    standard_claims,
    write_yaml,
)
from tests.support.stores import fresh_pg_database

#: The snooze reason the rules offer on their cards, configured here for other days than its default.
SNOOZE_REASON = "snooze-30d"
#: A second tenant of the same EHR: its clinicians must not see or silence the first one's cards.
OTHER_TENANT = "hospital-b"

Signer = Callable[..., str]


@dataclass(frozen=True)
class Replica:
    """One running service process and the base URL its tokens must name."""

    url: str
    log: Path

    def call(self, sign: Signer, path: str, body: Any = None, token: str | None = None) -> requests.Response:
        """GET (no body) or POST ``path`` with a fresh token for this replica, or with ``token``."""
        headers = bearer(token or sign(self.url + path))
        if body is None:
            return requests.get(self.url + path, headers=headers, timeout=15)
        return requests.post(self.url + path, json=body, headers=headers, timeout=15)


@pytest.fixture(scope="module")
def replica_database_url() -> Iterator[str]:
    """An empty database of its own, so both replicas migrate it together at start-up."""
    with fresh_pg_database("replicas") as url:
        yield url


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def jwks(signing_key: ec.EllipticCurvePrivateKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.document = {"keys": [public_jwk(signing_key, EC_KID)]}
    yield server
    server.close()


@pytest.fixture(scope="module")
def sign(signing_key: ec.EllipticCurvePrivateKey, jwks: JwksServer) -> Signer:
    """``sign(aud, ..., jti=None, tenant=None)``: an ES384 token for one or more endpoint URLs,
    fresh jti and the first tenant by default."""

    def make(*audiences: str, jti: str | None = None, tenant: str | None = None) -> str:
        claims = {**standard_claims(), "aud": audiences[0] if len(audiences) == 1 else list(audiences)}
        if jti is not None:
            claims["jti"] = jti
        if tenant is not None:
            claims["tenant"] = tenant
        headers = {"typ": "JWT", "kid": EC_KID, "jku": jwks.url}
        return jwt.encode(claims, signing_key, algorithm="ES384", headers=headers)

    return make


@pytest.fixture(scope="module")
def service_env(
    tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer, replica_database_url: str
) -> dict[str, str]:
    """What every replica and ``spinehip report`` share: mode, database, trust file, secrets."""
    trust_file = write_yaml(tmp_path_factory.mktemp("trust") / "trusted-clients.yaml", {
        "clients": [{"iss": ISSUER, "jku": jwks.url, "tenants": [TENANT, OTHER_TENANT]}],
    })
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SPINEHIP_")}
    return {
        **inherited,
        "SPINEHIP_MODE": "production",
        "DATABASE_URL": replica_database_url,
        "SPINEHIP_TRUSTED_CLIENTS": str(trust_file),
        "SPINEHIP_AUDIT_SECRET": "replica-test-audit-secret-of-32-bytes",
        "SPINEHIP_SNOOZE_REASONS": f"{SNOOZE_REASON}=21",
        "SPINEHIP_DB_TIMEOUT": "10",  # what is stored is tested here, not faults (tests/faults)
    }


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, service_env: dict[str, str]
) -> Iterator[tuple[Replica, Replica]]:
    """Replicas A and B, started together on the same (empty) database."""
    logs = tmp_path_factory.mktemp("replica-logs")
    servers: list[RunningServer] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = {**service_env, "SPINEHIP_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
            servers.append(start_spinehip(env, logs, name=name, port=port))
        for server in servers:
            server.wait_until_answering()
        a, b = (Replica(url=s.base_url, log=s.log_path) for s in servers)
        yield a, b
    finally:
        for server in servers:
            server.stop()
