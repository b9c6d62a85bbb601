"""Leases: one holder at a time for a named job (the leading indexer, a reconcile run).

With a Redis client, leases live in Redis and hold across processes and machines;
without it they are in-process (one machine, one process: the embedded default).

Every acquisition gets a **fencing token** that is larger than any token handed out before for
that name. A holder that stalls past its TTL can lose the lease without knowing it; writes that
carry the token let the database refuse the stale holder (compare with the highest token seen).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis

from core.errors import ConfigError
from store.redis_boundary import redis_boundary


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    token: int  # fencing token: strictly increasing per name


class Leases(Protocol):
    async def acquire(self, name: str, ttl: float, owner: str | None = None) -> Lease | None:
        """Take the lease for ``ttl`` seconds, or None while someone else holds it."""

    async def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend a lease we still hold; False when it expired or was taken over."""

    async def release(self, lease: Lease) -> None:
        """Give the lease up if we still hold it (never someone else's)."""


def _owner(owner: str | None) -> str:
    return owner or uuid.uuid4().hex


def _millis(ttl: float) -> int:
    if ttl <= 0:
        raise ConfigError(f"a lease needs a positive TTL, not {ttl}", code="invalid_lease_ttl")
    return max(1, int(ttl * 1000))


class LocalLeases:
    """In-process leases, for the embedded single-process set-up and tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, int, float]] = {}  # name -> owner, token, expires at
        self._fence: dict[str, int] = {}

    async def acquire(self, name: str, ttl: float, owner: str | None = None) -> Lease | None:
        millis = _millis(ttl)
        now = self._clock()
        held = self._held.get(name)
        if held is not None and held[2] > now:
            return None
        token = self._fence.get(name, 0) + 1
        self._fence[name] = token
        lease = Lease(name, _owner(owner), token)
        self._held[name] = (lease.owner, token, now + millis / 1000)
        return lease

    async def renew(self, lease: Lease, ttl: float) -> bool:
        millis = _millis(ttl)
        now = self._clock()
        held = self._held.get(lease.name)
        if held is None or held[:2] != (lease.owner, lease.token) or held[2] <= now:
            return False
        self._held[lease.name] = (lease.owner, lease.token, now + millis / 1000)
        return True

    async def release(self, lease: Lease) -> None:
        held = self._held.get(lease.name)
        if held is not None and held[:2] == (lease.owner, lease.token):
            del self._held[lease.name]


# Each script runs atomically in Redis, so check-and-set needs no client-side lock.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLeases:
    """Leases in Redis: ``{prefix}lease:{name}`` holds ``owner:token`` with a TTL, and
    ``{prefix}fence:{name}`` the last token handed out (never expires)."""

    def __init__(self, client: redis.Redis, prefix: str = "aiw3:") -> None:
        self._client = client
        self._prefix = prefix
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._renew: Any = client.register_script(_RENEW)
        self._release: Any = client.register_script(_RELEASE)

    def _keys(self, name: str) -> list[str]:
        return [f"{self._prefix}lease:{name}", f"{self._prefix}fence:{name}"]

    async def acquire(self, name: str, ttl: float, owner: str | None = None) -> Lease | None:
        who = _owner(owner)
        millis = _millis(ttl)
        async with redis_boundary("the lease store"):
            token = await self._acquire(keys=self._keys(name), args=[who, millis])
        return None if token is None else Lease(name, who, int(token))

    async def renew(self, lease: Lease, ttl: float) -> bool:
        value = f"{lease.owner}:{lease.token}"
        keys = self._keys(lease.name)[:1]
        millis = _millis(ttl)
        async with redis_boundary("the lease store"):
            return bool(await self._renew(keys=keys, args=[value, millis]))

    async def release(self, lease: Lease) -> None:
        value = f"{lease.owner}:{lease.token}"
        async with redis_boundary("the lease store"):
            await self._release(keys=self._keys(lease.name)[:1], args=[value])
