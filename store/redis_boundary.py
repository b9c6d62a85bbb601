"""Redis errors leave as the store's, like the database's: Redis is the shared lock store,
cache and event stream, and callers retry a :class:`RetryableStoreError` the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis import exceptions as redis_errors

from core.errors import RetryableStoreError, StoreError


@asynccontextmanager
async def redis_boundary(what: str) -> AsyncIterator[None]:
    """Translate Redis errors raised inside the block; ``what`` names the store in messages
    (``"the lease store"``, ``"the event stream"``)."""
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        raise RetryableStoreError(
            f"{what} is unreachable ({type(exc).__name__}); try again"
        ) from exc
    except redis_errors.RedisError as exc:
        raise StoreError(f"{what} refused the call ({type(exc).__name__})") from exc
