"""The cache and locks behave the same in-process and in Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from minting.cache import Cache, LocalCache, LocalLocks, Locks, RedisCache, RedisLocks


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "redis"])
def cache(request: pytest.FixtureRequest) -> Cache:
    if request.param == "local":
        return LocalCache()
    return RedisCache(request.getfixturevalue("redis_client"))


@pytest.fixture(params=["local", "redis"])
def locks(request: pytest.FixtureRequest) -> Locks:
    if request.param == "local":
        return LocalLocks()
    return RedisLocks(request.getfixturevalue("redis_client"))


async def test_set_get_delete(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", "v", 60)
    assert await cache.get("k") == "v"
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_local_cache_expires() -> None:
    clock = _Clock()
    cache = LocalCache(clock)
    await cache.set("k", "v", 300)
    clock.now = 299.9
    assert await cache.get("k") == "v"
    clock.now = 300
    assert await cache.get("k") is None


async def test_redis_cache_sets_the_ttl(redis_client: Any) -> None:
    await RedisCache(redis_client).set("nft_qual:1", "{}", 300)
    ttl = await redis_client.pttl("nft_qual:1")
    assert 0 < ttl <= 300_000


async def test_lock_is_exclusive_and_released(locks: Locks) -> None:
    async with locks.hold("nft_lock:claim:1", ttl=10, wait=1) as first:
        assert first
        async with locks.hold("nft_lock:claim:1", ttl=10, wait=0.05) as second:
            assert not second
        async with locks.hold("nft_lock:claim:2", ttl=10, wait=0.05) as other:
            assert other
    async with locks.hold("nft_lock:claim:1", ttl=10, wait=0.05) as again:
        assert again


async def test_waiters_take_the_lock_in_turn(locks: Locks) -> None:
    inside = 0
    most = 0

    async def worker() -> bool:
        nonlocal inside, most
        async with locks.hold("nft_lock:claim:9", ttl=10, wait=10) as taken:
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.005)
            inside -= 1
            return taken

    assert all(await asyncio.gather(*(worker() for _ in range(5))))
    assert most == 1


async def test_redis_lock_is_not_released_by_a_stranger(redis_client: Any) -> None:
    locks = RedisLocks(redis_client)
    async with locks.hold("nft_lock:claim:3", ttl=10, wait=1) as taken:
        assert taken
        await redis_client.set("nft_lock:claim:3", "someone-else")
    assert await redis_client.get("nft_lock:claim:3") == b"someone-else"
