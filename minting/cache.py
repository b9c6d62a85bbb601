"""A small cache and a lock, each in Redis (shared by every process) or in-process.

Both only save work: the cache holds answers that a TTL keeps fresh enough, the lock keeps two
requests of one user from doing the same work at once. Correctness never rests on either.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as redis

from store.redis_boundary import redis_boundary


class Cache(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def delete(self, *keys: str) -> None:
        """Drop every one of ``keys`` (at once: one round trip to Redis)."""
        ...


class LocalCache:
    """In-process cache for the embedded single-process set-up (no ``AIW3_REDIS_URL``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires = item
        if self._clock() >= expires:
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._items[key] = (value, self._clock() + ttl)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._items.pop(key, None)


class RedisCache:
    """The shared cache; Redis errors leave as the store's (``RetryableStoreError`` while
    Redis is unreachable), so callers retry them as they retry the database's."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    async def get(self, key: str) -> str | None:
        async with redis_boundary("the cache"):
            value = await self._client.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        async with redis_boundary("the cache"):
            await self._client.set(key, value, px=max(1, int(ttl * 1000)))

    async def delete(self, *keys: str) -> None:
        if keys:
            async with redis_boundary("the cache"):
                await self._client.delete(*keys)


class Locks(Protocol):
    def hold(self, name: str, *, ttl: float, wait: float) -> AbstractAsyncContextManager[bool]:
        """Hold ``name`` for at most ``ttl`` seconds; yields False when not taken within
        ``wait`` seconds (the caller goes on: the lock only saves work)."""
        ...


class LocalLocks:
    """In-process named locks. ``hold`` yields True when taken, False after ``wait`` seconds."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, name: str, *, ttl: float, wait: float) -> AsyncIterator[bool]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), wait)
        except TimeoutError:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(name, None)


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisLocks:
    """Redis ``SET NX PX`` locks, released only by their holder (a token per hold)."""

    def __init__(self, client: redis.Redis, *, poll: float = 0.02) -> None:
        self._client = client
        self._poll = poll

    @asynccontextmanager
    async def hold(self, name: str, *, ttl: float, wait: float) -> AsyncIterator[bool]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        taken = False
        while True:
            if await self._client.set(name, token, nx=True, px=max(1, int(ttl * 1000))):
                taken = True
                break
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(self._poll)
        try:
            yield taken
        finally:
            if taken:
                await self._client.eval(_RELEASE, 1, name, token)
