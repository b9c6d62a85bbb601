"""The mint intent/outbox: one row per idempotency key, claimed by workers with row locks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.tables import MintOperation


@dataclass(frozen=True)
class NewMintOperation:
    idempotency_key: str
    kind: str
    level: int
    owner_address: str
    mint_address: str
    asset_standard: str
    user_id: int | None = None
    metadata_uri: str | None = None


async def get_by_key(session: AsyncSession, idempotency_key: str) -> MintOperation | None:
    return (
        await session.execute(
            select(MintOperation).where(MintOperation.idempotency_key == idempotency_key)
        )
    ).scalar_one_or_none()


async def create_or_get(session: AsyncSession, new: NewMintOperation) -> tuple[MintOperation, bool]:
    """Record the intent, or return the one already recorded under the same key.

    Returns ``(operation, created)``. Two racing callers with one key get one row: the loser's
    insert fails on the unique key inside a savepoint and it reads the winner's row.
    """
    existing = await get_by_key(session, new.idempotency_key)
    if existing is not None:
        return existing, False
    operation = MintOperation(
        idempotency_key=new.idempotency_key,
        kind=new.kind,
        level=new.level,
        owner_address=new.owner_address,
        mint_address=new.mint_address,
        asset_standard=new.asset_standard,
        user_id=new.user_id,
        metadata_uri=new.metadata_uri,
        state="created",
    )
    try:
        async with session.begin_nested():
            session.add(operation)
    except IntegrityError:
        winner = await get_by_key(session, new.idempotency_key)
        if winner is None:  # the collision was on another key (e.g. the mint address)
            raise
        return winner, False
    return operation, True


async def claim_due(
    session: AsyncSession, states: Sequence[str], now: dt.datetime, limit: int = 10
) -> list[MintOperation]:
    """Lock up to ``limit`` operations that are due, skipping rows other workers hold.

    On PostgreSQL and MySQL this is ``FOR UPDATE SKIP LOCKED``; SQLite has one writer at a
    time, so the clause is dropped there and the write lock serialises workers instead.
    """
    stmt = (
        select(MintOperation)
        .where(MintOperation.state.in_(list(states)), MintOperation.next_attempt_at <= now)
        .order_by(MintOperation.next_attempt_at, MintOperation.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())
