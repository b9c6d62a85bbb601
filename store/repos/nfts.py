"""User NFTs (business view) and qualification records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import upsert
from store.tables import UserNft, UserNftQualification

LIVE_STATUSES = ("unlocked", "active")


async def live_tier_nft(session: AsyncSession, user_id: int) -> UserNft | None:
    """The user's current tier NFT (unlocked or active), if any."""
    return (
        await session.execute(
            select(UserNft).where(
                UserNft.user_id == user_id,
                UserNft.kind == "tier",
                UserNft.status.in_(LIVE_STATUSES),
            )
        )
    ).scalar_one_or_none()


async def get_by_mint(session: AsyncSession, mint_address: str) -> UserNft | None:
    return (
        await session.execute(select(UserNft).where(UserNft.mint_address == mint_address))
    ).scalar_one_or_none()


async def record_qualification(
    session: AsyncSession,
    *,
    user_id: int,
    level: int,
    qualified: bool,
    volume_usd: Decimal,
    badges_count: int,
    at: dt.datetime,
) -> None:
    """Keep the latest qualification check per (user, level)."""
    await upsert(
        session,
        UserNftQualification.__table__,  # type: ignore[arg-type]
        {
            "user_id": user_id,
            "level": level,
            "qualified": qualified,
            "volume_usd": volume_usd,
            "badges_count": badges_count,
            "checked_at": at,
        },
        key=("user_id", "level"),
    )
