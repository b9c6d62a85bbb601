"""The mint intent/outbox: one row per idempotency key, claimed by workers with row locks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import StoreConflict
from store.dialect import lock_for_claim
from store.tables import MintOperation

_OWN_KEYS = ("uq_mint_operations_idempotency_key", "uq_mint_operations_mint_address")


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
    insert fails on the unique key inside a savepoint and it reads the winner's row. A clash on
    another key (the mint address) is raised as :class:`~core.errors.StoreConflict`.
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
    except StoreConflict as conflict:
        # The mint address derives from the key, so a racing twin may clash on either unique
        # column first (SQLite checks them in index order): ours if the key's row exists.
        winner = await get_by_key(session, new.idempotency_key)
        if conflict.constraint not in _OWN_KEYS or winner is None:
            raise
        return winner, False
    return operation, True


async def claim_due(
    session: AsyncSession, states: Sequence[str], now: dt.datetime, limit: int = 10
) -> list[MintOperation]:
    """Lock up to ``limit`` operations that are due, skipping rows other workers hold.

    On PostgreSQL and MySQL this is ``FOR UPDATE SKIP LOCKED``; SQLite has no row locks, so
    there the claim takes the database's write lock first and workers take turns (see
    :func:`store.dialect.lock_for_claim`). Either way no two open transactions hold one row.
    """
    await lock_for_claim(session)
    stmt = (
        select(MintOperation)
        .where(MintOperation.state.in_(list(states)), MintOperation.next_attempt_at <= now)
        .order_by(MintOperation.next_attempt_at, MintOperation.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())
