"""Fixtures of the minting tests: users with trades and badges."""

from __future__ import annotations

from decimal import Decimal

from solders.keypair import Keypair
from sqlalchemy.ext.asyncio import AsyncSession

from store.repos import users
from store.tables import User


async def make_user(
    session: AsyncSession, volume: Decimal | str = "0", badges: int = 0, wallet: str | None = None
) -> User:
    """A committed user with one trade of ``volume`` (none for 0) and ``badges`` owned badges."""
    user = await users.get_or_create_user(session, wallet or str(Keypair().pubkey()))
    await session.flush()
    if Decimal(volume):
        await users.add_trade(session, user.id, Decimal(volume), None)
    for number in range(badges):
        await users.add_badge(session, user.id, f"badge-{number}")
    await session.commit()
    return user
