"""Verification of the CDS client JWT (CDS Hooks 2.0, "Trusting CDS Clients"; SEC-03..13).

Order matters: the issuer is looked up first so keys come only from that issuer's allowlisted
source; the algorithm is checked against the issuer's list before any key is touched, so
``none`` and HMAC tokens (including HMAC "signed" with a public key) never reach a verifier; the
``jti`` is recorded only after everything else passed, so forged tokens cannot burn ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from service.security.identity import ClientIdentity
from service.security.jwks import KeyStore, KeyUnavailable
from service.security.replay import ReplayCache
from service.security.trust import TrustConfig

LEEWAY_S = 60
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


class TokenRejected(Exception):
    """The token is not acceptable. The message is safe to log: it never holds token content."""


def _claim_text(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _bind_key(raw: dict[str, Any], alg: str) -> jwt.PyJWK:
    """The JWK as a key for ``alg``; a key declaring another ``alg`` or of another type is refused."""
    if raw.get("alg") not in (None, alg):
        raise TokenRejected("token alg differs from the key's alg")
    try:
        return jwt.PyJWK(raw, algorithm=alg)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        raise TokenRejected("key does not fit the token's alg") from None


class TokenVerifier:
    """Checks one bearer token against the trust configuration for the URL being called."""

    def __init__(
        self,
        trust: TrustConfig,
        keys: KeyStore,
        replay: ReplayCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trust = trust
        self._keys = keys
        self._replay = replay
        self._clock = clock

    def verify(self, token: str, audience: str) -> ClientIdentity:
        """The caller's identity, or TokenRejected with a loggable reason."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejected("token is not a well-formed JWS") from None
        iss = _claim_text(unverified.get("iss"))
        client = self._trust.clients.get(iss) if iss else None
        if client is None:
            raise TokenRejected(f"issuer not trusted: {iss!r}")
        alg = header.get("alg")
        if alg not in client.algorithms:
            raise TokenRejected(f"algorithm {_claim_text(alg, 20)!r} not allowed for {iss}")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise TokenRejected("typ header is not JWT")
        jku = header.get("jku")
        if jku is not None and jku != client.jku:
            raise TokenRejected(f"jku not allowlisted for {iss}: {_claim_text(jku)!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("kid header missing")
        try:
            raw_key = self._keys.key_for(client, kid)
        except KeyUnavailable as exc:
            raise TokenRejected(str(exc)) from None
        key = _bind_key(raw_key, alg)
        claims = self._decode(token, key, alg, audience, iss)
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise TokenRejected("tenant claim is not a string")
        if client.tenants is not None and tenant not in client.tenants:
            raise TokenRejected(f"tenant {_claim_text(tenant)!r} not allowed for {iss}")
        self._check_replay(claims, iss)
        return ClientIdentity(iss=iss, tenant=tenant, fhir_servers=client.fhir_servers)

    def _decode(
        self, token: str, key: jwt.PyJWK, alg: str, audience: str, iss: str
    ) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=iss,
                leeway=LEEWAY_S,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("token issued in the future") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("aud does not name this endpoint") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"claim missing: {exc.claim}") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("signature invalid") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"token invalid: {type(exc).__name__}") from None

    def _check_replay(self, claims: dict[str, Any], iss: str) -> None:
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise TokenRejected("jti is not a non-empty string")
        max_age = self._trust.max_token_age_seconds
        iat = float(claims["iat"])
        now = self._clock()
        if now - iat > max_age + LEEWAY_S:
            raise TokenRejected("token older than the maximum token age")
        # Past iat + max age the token is refused as too old, so the id need not be kept longer.
        if not self._replay.first_use(f"{iss}\x00{jti}", iat + max_age + LEEWAY_S):
            raise TokenRejected(f"jti replayed: {jti[:64]!r}")
