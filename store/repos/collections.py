"""Trusted collections: the collection mints this deployment created (migration 0003)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import insert_ignore
from store.tables import TrustedCollection


async def record(
    session: AsyncSession, *, mint: str, standard: str, authority: str, at: dt.datetime
) -> None:
    """Record a collection once; recording it again changes nothing."""
    await insert_ignore(
        session,
        TrustedCollection.__table__,  # type: ignore[arg-type]
        [{"mint": mint, "standard": standard, "authority": authority, "created_at": at}],
    )


async def get(session: AsyncSession, mint: str) -> TrustedCollection | None:
    return await session.get(TrustedCollection, mint)


async def list_all(session: AsyncSession) -> list[TrustedCollection]:
    stmt = select(TrustedCollection).order_by(TrustedCollection.created_at, TrustedCollection.mint)
    return list((await session.execute(stmt)).scalars())
