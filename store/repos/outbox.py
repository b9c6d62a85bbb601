"""The transactional outbox: events are written with the change, published by a relay later."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import lock_for_claim
from store.tables import EventOutbox


async def enqueue(
    session: AsyncSession, topic: str, event_type: str, payload: Any, user_id: int | None = None
) -> EventOutbox:
    event = EventOutbox(topic=topic, event_type=event_type, payload=payload, user_id=user_id)
    session.add(event)
    await session.flush()
    return event


async def claim_unpublished(session: AsyncSession, limit: int = 100) -> list[EventOutbox]:
    """Oldest unpublished events, locked so that two relays never publish the same one
    (row locks on PostgreSQL and MySQL, the write lock on SQLite)."""
    await lock_for_claim(session)
    stmt = (
        select(EventOutbox)
        .where(EventOutbox.published_at.is_(None))
        .order_by(EventOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def mark_published(session: AsyncSession, ids: list[int], at: dt.datetime) -> None:
    if ids:
        await session.execute(
            update(EventOutbox).where(EventOutbox.id.in_(ids)).values(published_at=at)
        )
