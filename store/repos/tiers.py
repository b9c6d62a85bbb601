"""The level table (configuration rows, see migration 0002)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.tables import NftTier


async def list_tiers(session: AsyncSession, kind: str | None = None) -> list[NftTier]:
    stmt = select(NftTier).order_by(NftTier.level)
    if kind is not None:
        stmt = stmt.where(NftTier.kind == kind)
    return list((await session.execute(stmt)).scalars())
