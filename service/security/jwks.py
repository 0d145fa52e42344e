"""Client signing keys, fetched only from allowlisted ``jku`` URLs and cached.

Keys are cached for a TTL. A token naming a ``kid`` the cache lacks triggers one re-fetch (the
client may have rotated keys), but no more often than the refetch interval, so a flood of tokens
with made-up kids cannot turn the service into a traffic generator against the client's server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from service.security.trust import TrustedClient

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 3.0
MAX_JWKS_BYTES = 256 * 1024


class KeyUnavailable(Exception):
    """No usable key for this token; the reason is safe to log (it holds no token content)."""


JWK = dict[str, Any]


def parse_jwks(document: Any) -> dict[str, JWK]:
    """Usable public JWKs of a JWK Set by kid; keys without kid, private or unusable ones are skipped.

    The raw JWK is kept, not a PyJWK: a key without ``alg`` is bound to the token's algorithm at
    verification time (an RSA JWK alone would otherwise default to RS256).
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyUnavailable("JWK Set has no `keys` list")
    keys: dict[str, JWK] = {}
    for raw in document["keys"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str):
            continue
        if raw.get("kty") == "oct" or "d" in raw:
            continue
        try:
            jwt.PyJWK(raw)
            keys[raw["kid"]] = raw
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
            log.warning("skipping unusable key kid=%s in JWK Set", raw["kid"][:64])
    return keys


@dataclass
class _Entry:
    keys: dict[str, JWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


class KeyStore:
    """Finds the verification key for (client, kid)."""

    def __init__(
        self,
        ttl_s: float,
        refetch_interval_s: float,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._refetch_interval = refetch_interval_s
        self._session = session or requests.Session()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._entries_lock = threading.Lock()
        self._inline: dict[str, dict[str, JWK]] = {}

    def key_for(self, client: TrustedClient, kid: str) -> JWK:
        """The client's key named ``kid``; raises KeyUnavailable."""
        if client.jwks is not None:
            inline = self._inline.get(client.iss)
            if inline is None:
                inline = self._inline[client.iss] = parse_jwks(client.jwks)
            key = inline.get(kid)
            if key is None:
                raise KeyUnavailable(f"kid not in configured keys of {client.iss}")
            return key
        assert client.jku is not None  # the trust file guarantees one of the two
        with self._entries_lock:
            entry = self._entries.setdefault(client.jku, _Entry())
        with entry.lock:
            now = self._clock()
            wanted = kid not in entry.keys or now - entry.fetched_at >= self._ttl
            if wanted and now - entry.attempted_at >= self._refetch_interval:
                entry.attempted_at = now
                try:
                    entry.keys = self._fetch(client.jku)
                    entry.fetched_at = now
                except KeyUnavailable as exc:
                    # Keep the keys we had: a brief outage of the client's key server should
                    # not lock out tokens signed with keys we already know.
                    log.warning("JWK Set of %s not refreshed: %s", client.iss, exc)
            key = entry.keys.get(kid)
        if key is None:
            raise KeyUnavailable(f"kid not in JWK Set of {client.iss}")
        return key

    def _fetch(self, jku: str) -> dict[str, JWK]:
        try:
            response = self._session.get(
                jku, timeout=FETCH_TIMEOUT_S, allow_redirects=False, stream=True,
                headers={"Accept": "application/json"},
            )
            with response:
                if response.status_code != 200:
                    raise KeyUnavailable(f"JWK Set fetch answered HTTP {response.status_code}")
                body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise KeyUnavailable(f"JWK Set fetch failed: {type(exc).__name__}") from None
        if len(body) > MAX_JWKS_BYTES:
            raise KeyUnavailable("JWK Set too large")
        try:
            document = json.loads(body)
        except ValueError:
            raise KeyUnavailable("JWK Set is not JSON") from None
        keys = parse_jwks(document)
        log.info("fetched JWK Set from %s: %d usable keys", jku, len(keys))
        return keys
