"""A real deadlock on MariaDB, lost by the unit of work under test.

A second writer locks row A, lets the unit run until the unit waits for A, then asks for row B,
which the unit already holds: the cycle is complete and InnoDB rolls back the lighter of the two
transactions. The second writer first inserts a ballast of rows of its own, so the lighter one
is always the unit: it gets ``RetryableStoreError`` (error 1213) and must run again, whole.
The second writer then rolls everything back, ballast included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.engine import session_factory
from store.tables import Trade

T = TypeVar("T")

_BALLAST = 200  # rows: many more than any unit under test writes
# InnoDB refreshes what INNODB_TRX shows at most every 100 ms of quiet: poll slower than that.
_POLL = 0.15
_PATIENCE = 200  # polls: a guard against a hang, not a timing assertion

_WAITING = text(
    "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
    "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
    "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()"
)
_DEADLOCKS = text("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")


async def deadlocks(engine: AsyncEngine) -> int:
    """Deadlocks the server has detected so far (all databases)."""
    async with engine.connect() as conn:
        return int((await conn.execute(_DEADLOCKS)).one()[1])


async def lose_a_deadlock(
    engine: AsyncEngine,
    unit: Awaitable[T],
    *,
    lock_first: str,
    lock_then: str,
    params: dict[str, Any],
    ballast_user: int,
) -> T:
    """Run ``unit`` so that it deadlocks with a heavier writer once; returns what it returns.

    ``lock_first`` locks a row the unit needs late; ``lock_then`` a row it holds by then."""
    assert engine.dialect.name == "mysql"
    sessions = session_factory(engine)
    async with sessions() as other, engine.connect() as probe:
        await other.begin()
        other.add_all(
            [Trade(user_id=ballast_user, total_usd_price=Decimal(0)) for _ in range(_BALLAST)]
        )
        await other.flush()
        await other.execute(text(lock_first), params)
        task = asyncio.ensure_future(unit)
        try:
            for _ in range(_PATIENCE):
                # A fresh snapshot per poll: the probe keeps no transaction open.
                waiting = (await probe.execute(_WAITING)).scalar_one()
                await probe.rollback()
                if waiting or task.done():
                    break
                await asyncio.sleep(_POLL)
            assert not task.done(), "the unit finished without waiting for the locked row"
            assert waiting, "the unit never waited for the locked row"
            # Completes the cycle; returns once InnoDB has rolled the unit back.
            await other.execute(text(lock_then), params)
        finally:
            await other.rollback()
        return await task
