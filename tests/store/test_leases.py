"""Leases hold one holder at a time, expire, fence stale holders: in-process and on Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from core.errors import ConfigError, RetryableStoreError
from store.leases import Leases, LocalLeases, RedisLeases

TTL = 0.2


@pytest.fixture(params=["local", "redis"])
def leases(request: pytest.FixtureRequest) -> tuple[Leases, Leases]:
    """Two managers sharing one lease space, as two processes (or one process twice)."""
    if request.param == "local":
        shared = LocalLeases()
        return shared, shared
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisLeases(client, prefix="t:"), RedisLeases(client, prefix="t:")


async def test_one_holder_at_a_time(leases: tuple[Leases, Leases]) -> None:
    first, second = leases
    held = await first.acquire("indexer", TTL, owner="a")
    assert held is not None
    assert await second.acquire("indexer", TTL, owner="b") is None
    other = await second.acquire("reconciler", TTL, owner="b")  # names are independent
    assert other is not None


async def test_release_hands_over_with_a_higher_token(leases: tuple[Leases, Leases]) -> None:
    first, second = leases
    held = await first.acquire("indexer", 10, owner="a")
    assert held is not None
    await first.release(held)
    taken = await second.acquire("indexer", 10, owner="b")
    assert taken is not None
    assert taken.token > held.token
    await first.release(held)  # a stale release must not free someone else's lease
    assert await first.acquire("indexer", 10, owner="a") is None


async def test_expiry_fences_the_stale_holder(leases: tuple[Leases, Leases]) -> None:
    first, second = leases
    stale = await first.acquire("indexer", TTL, owner="a")
    assert stale is not None
    assert await first.renew(stale, TTL)
    await asyncio.sleep(TTL * 2)
    fresh = await second.acquire("indexer", 10, owner="b")
    assert fresh is not None
    assert fresh.token > stale.token
    assert not await first.renew(stale, 10)
    assert await second.renew(fresh, 10)


async def test_concurrent_acquire_has_one_winner(leases: tuple[Leases, Leases]) -> None:
    first, second = leases
    results = await asyncio.gather(
        *(m.acquire("reconcile", 10, owner=f"w{i}") for i, m in enumerate([first, second] * 5))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1


async def test_ttl_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="positive TTL"):
        await LocalLeases().acquire("x", 0)


async def test_unreachable_redis_is_retryable() -> None:
    client = redis.Redis(host="127.0.0.1", port=1)  # nothing listens there
    try:
        with pytest.raises(RetryableStoreError, match="lease store is unreachable"):
            await RedisLeases(client).acquire("indexer", 10)
    finally:
        await client.aclose()
