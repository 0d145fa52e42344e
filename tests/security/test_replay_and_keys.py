"""Replay cache and JWK Set cache, with a controlled clock."""

from __future__ import annotations

import threading

import pytest

from service.security.jwks import KeyStore, KeyUnavailable
from service.security.replay import InMemoryReplayCache
from service.security.trust import load_trust_config
from tests.support.security import EC_KID, ISSUER, JwksServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_jti_is_refused_until_it_expires() -> None:
    clock = Clock()
    cache = InMemoryReplayCache(clock)
    assert cache.first_use("iss\x00a", clock.now + 100)
    assert not cache.first_use("iss\x00a", clock.now + 100)
    assert cache.first_use("iss\x00b", clock.now + 100)
    clock.now += 101
    assert cache.first_use("iss\x00a", clock.now + 100)


def test_expired_entries_are_purged() -> None:
    clock = Clock()
    cache = InMemoryReplayCache(clock)
    for i in range(100):
        cache.first_use(str(i), clock.now + 10)
    clock.now += 120
    cache.first_use("new", clock.now + 10)
    assert len(cache) == 1


def test_concurrent_first_use_admits_exactly_one() -> None:
    cache = InMemoryReplayCache()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        results.append(cache.first_use("same", 2e9))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


@pytest.fixture
def client_entry(trust_file):
    return load_trust_config(trust_file, production=True).clients[ISSUER]


def test_keys_are_cached_until_the_ttl(client_entry, jwks_server: JwksServer) -> None:
    clock = Clock()
    store = KeyStore(ttl_s=600, refetch_interval_s=30, clock=clock)
    store.key_for(client_entry, EC_KID)
    store.key_for(client_entry, EC_KID)
    assert jwks_server.hits == 1
    clock.now += 601
    store.key_for(client_entry, EC_KID)
    assert jwks_server.hits == 2


def test_unknown_kid_refetch_is_rate_limited(client_entry, jwks_server) -> None:
    clock = Clock()
    store = KeyStore(ttl_s=600, refetch_interval_s=30, clock=clock)
    store.key_for(client_entry, EC_KID)
    for _ in range(5):
        with pytest.raises(KeyUnavailable):
            store.key_for(client_entry, "unknown")
    assert jwks_server.hits == 1  # the first fetch was < 30 s ago
    clock.now += 31
    with pytest.raises(KeyUnavailable):
        store.key_for(client_entry, "unknown")
    assert jwks_server.hits == 2


def test_key_server_outage_keeps_known_keys(client_entry, jwks_server) -> None:
    clock = Clock()
    store = KeyStore(ttl_s=60, refetch_interval_s=30, clock=clock)
    store.key_for(client_entry, EC_KID)
    jwks_server.close()
    clock.now += 61
    assert store.key_for(client_entry, EC_KID)["kid"] == EC_KID


def test_unreachable_key_server_means_no_key(client_entry, jwks_server) -> None:
    jwks_server.close()
    with pytest.raises(KeyUnavailable):
        KeyStore(ttl_s=60, refetch_interval_s=30).key_for(client_entry, EC_KID)


def test_non_json_key_set_means_no_key(client_entry, jwks_server) -> None:
    jwks_server.document = ["not", "a", "key", "set"]  # type: ignore[assignment]
    with pytest.raises(KeyUnavailable):
        KeyStore(ttl_s=60, refetch_interval_s=30).key_for(client_entry, EC_KID)
