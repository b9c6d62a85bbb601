"""store.retry: a unit of work that lost a real deadlock runs again, whole, and commits once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.errors import RetryableStoreError
from store import retry
from store.engine import session_factory
from store.repos import users
from store.tables import Trade, User
from tests.harness.deadlock import deadlocks, lose_a_deadlock


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
async def test_a_unit_that_lost_a_deadlock_runs_again_and_commits_once(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        a, b, ballast = [await users.get_or_create_user(session, w) for w in ("a", "b", "c")]
        await session.commit()
    tries: list[int] = []

    async def unit(session: AsyncSession) -> int:
        tries.append(len(tries) + 1)
        for user in (a, b):  # a is held when b is waited for
            await session.execute(
                update(User).where(User.id == user.id).values(wallet_address=f"{user.id}-new")
            )
        return (await users.add_trade(session, a.id, Decimal(5), None)).id

    before = await deadlocks(engine)
    trade_id = await lose_a_deadlock(
        engine,
        retry.in_transaction(sessions, unit, what="test"),
        lock_first="UPDATE users SET wallet_address = wallet_address WHERE id = :b",
        lock_then="SELECT id FROM users WHERE id = :a FOR UPDATE",
        params={"a": a.id, "b": b.id},
        ballast_user=ballast.id,
    )
    assert await deadlocks(engine) > before
    assert tries == [1, 2]
    async with sessions() as session:
        trades = (await session.execute(select(Trade.id))).scalars().all()
        wallets = (await session.execute(select(User.wallet_address).order_by(User.id))).all()
    assert list(trades) == [trade_id]  # the first try left nothing behind, nor did the ballast
    assert [w for (w,) in wallets] == [f"{a.id}-new", f"{b.id}-new", "c"]


async def test_the_error_reaches_the_caller_after_the_last_try(engine: AsyncEngine) -> None:
    """A unit the database keeps refusing: tried ``attempts`` times, then the error goes up,
    and nothing of any try is committed."""
    sessions = session_factory(engine)
    tries: list[int] = []

    async def unit(session: AsyncSession) -> None:
        tries.append(len(tries) + 1)
        session.add(User(wallet_address=f"w{len(tries)}"))
        await session.flush()
        # What a lost connection or a deadlock at commit would raise, after a real write.
        raise RetryableStoreError("the database aborted the unit")

    with pytest.raises(RetryableStoreError):
        await retry.in_transaction(sessions, unit, what="test", attempts=3)
    assert tries == [1, 2, 3]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
