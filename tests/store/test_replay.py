"""JWT ids are remembered in the database, so a token replayed to another replica is refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from service.security.replay import ReplayCache
from service.store import AuditPolicy, Store


def test_a_jti_is_accepted_once(store: Store) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert store.remember_jti("jti-1", expires) is True
    assert store.remember_jti("jti-1", expires) is False
    assert store.remember_jti("jti-2", expires) is True


def test_an_expired_entry_is_purged(store: Store) -> None:
    assert store.remember_jti("jti-old", datetime.now(UTC) - timedelta(seconds=1)) is True
    assert store.remember_jti("jti-old", datetime.now(UTC) + timedelta(minutes=5)) is True


def test_replay_cache_protocol_accepts_issuer_scoped_keys_with_nul(store: Store) -> None:
    cache: ReplayCache = store
    key = "https://ehr.example.org\x00" + "j" * 400
    expires = time.time() + 300
    assert cache.first_use(key, expires) is True
    assert cache.first_use(key, expires) is False
    assert cache.first_use("https://other.example.org\x00" + "j" * 400, expires) is True


def test_a_jti_seen_by_one_replica_is_refused_by_another(
    store: Store, database_url: str, policy: AuditPolicy
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert store.remember_jti("jti-shared", expires)
    other = Store.from_url(database_url, policy)
    try:
        assert other.remember_jti("jti-shared", expires) is False
    finally:
        other.close()
