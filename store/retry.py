"""Run one unit of work in its own database transaction, again when the database says so.

A :class:`~core.errors.RetryableStoreError` (a deadlock, a lock wait timeout, a lost
connection) means the whole transaction was rolled back and nothing of it was committed, so the
unit is run again from the start, in a fresh session, after a jittered pause: two writers that
deadlocked each other and retried in lock step would meet again. After ``attempts`` tries the
error goes to the caller (whose loop puts the work off, or whose process restarts from what was
committed).

The unit must not keep effects outside the session between tries (an in-memory cache filled
before the commit, a counter): only what it returns after the commit is used.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import RetryableStoreError

T = TypeVar("T")

#: Tries of one unit: the pauses between them add up to at most 2.3 s (1 s at most each).
ATTEMPTS: Final = 8

_log = structlog.stdlib.get_logger(__name__)


def pause(attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1``: uniform up to 20 ms x 2^attempt, at most 1 s."""
    return random.uniform(0, min(1.0, 0.02 * 2**attempt))


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    unit: Callable[[AsyncSession], Awaitable[T]],
    *,
    what: str,
    attempts: int = ATTEMPTS,
) -> T:
    """``unit(session)`` inside ``session.begin()``, committed; run again on a retryable error.

    ``what`` names the unit in the log line of each retry."""
    for attempt in range(attempts):
        try:
            async with sessions() as session, session.begin():
                return await unit(session)
        except RetryableStoreError as exc:
            if attempt + 1 >= attempts:
                raise
            _log.warning("store.unit_retry", unit=what, attempt=attempt + 1, error=exc.message)
            await asyncio.sleep(pause(attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")
