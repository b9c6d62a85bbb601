"""Users, their trades (trading volume) and badges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ScalarSelect, SQLColumnExpression, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ConflictError, StoreConflict
from store.tables import Badge, Trade, User

LIVE_BADGE_STATUSES = ("owned", "activated")


async def get_user_by_wallet(session: AsyncSession, wallet: str) -> User | None:
    return (
        await session.execute(select(User).where(User.wallet_address == wallet))
    ).scalar_one_or_none()


async def get_or_create_user(session: AsyncSession, wallet: str) -> User:
    """The user of ``wallet``, created on first sight; safe when two requests race."""
    existing = await get_user_by_wallet(session, wallet)
    if existing is not None:
        return existing
    try:
        async with session.begin_nested():
            user = User(wallet_address=wallet)
            session.add(user)
    except StoreConflict as conflict:
        if conflict.constraint != "uq_users_wallet_address":
            raise
        found = await get_user_by_wallet(session, wallet)
        assert found is not None  # the row that beat us is committed
        return found
    return user


async def add_trade(
    session: AsyncSession, user_id: int, total_usd_price: Decimal, traded_at: dt.datetime | None
) -> Trade:
    trade = Trade(user_id=user_id, total_usd_price=total_usd_price)
    if traded_at is not None:
        trade.traded_at = traded_at
    session.add(trade)
    await session.flush()
    return trade


def volume_of(user_id: SQLColumnExpression[int] | int) -> ScalarSelect[Decimal]:
    """The user's trading volume as a scalar subquery (NULL without trades), so that one
    statement can read it beside other facts of the user."""
    return select(func.sum(Trade.total_usd_price)).where(Trade.user_id == user_id).scalar_subquery()


def usable_badges_of(user_id: SQLColumnExpression[int] | int) -> ScalarSelect[int]:
    """The count of the user's usable badges (owned or activated) as a scalar subquery."""
    return (
        select(func.count())
        .select_from(Badge)
        .where(Badge.user_id == user_id, Badge.status.in_(LIVE_BADGE_STATUSES))
        .scalar_subquery()
    )


async def trading_volume(session: AsyncSession, user_id: int) -> Decimal:
    """Sum of ``trades.total_usd_price`` for the user, exact."""
    total = (await session.execute(select(volume_of(user_id)))).scalar_one()
    return Decimal(0) if total is None else Decimal(total)


async def add_badge(session: AsyncSession, user_id: int, badge_type: str) -> Badge:
    badge = Badge(user_id=user_id, badge_type=badge_type, status="owned")
    session.add(badge)
    await session.flush()
    return badge


async def count_usable_badges(session: AsyncSession, user_id: int) -> int:
    """Badges that an upgrade could consume (owned or activated, not yet consumed)."""
    return int((await session.execute(select(usable_badges_of(user_id)))).scalar_one())


async def consume_badges(
    session: AsyncSession, user_id: int, count: int, upgrade_id: int, at: dt.datetime
) -> list[int]:
    """Mark ``count`` usable badges consumed by an upgrade (oldest first); returns their ids.

    Raises :class:`~core.errors.ConflictError` (``not_enough_badges``) when the user has fewer:
    nothing is changed then.
    """
    if count == 0:
        return []
    ids = list(
        (
            await session.execute(
                select(Badge.id)
                .where(Badge.user_id == user_id, Badge.status.in_(LIVE_BADGE_STATUSES))
                .order_by(Badge.id)
                .limit(count)
                .with_for_update()
            )
        ).scalars()
    )
    if len(ids) < count:
        raise ConflictError(
            f"user {user_id} has {len(ids)} usable badges, {count} needed",
            code="not_enough_badges",
            details={"usable": len(ids), "needed": count},
        )
    await session.execute(
        update(Badge)
        .where(Badge.id.in_(ids))
        .values(status="consumed", consumed_at=at, consumed_by_upgrade_id=upgrade_id)
    )
    return ids
