"""The mint intent/outbox: one row per idempotency key, claimed by workers with row locks."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Table, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
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
    mint_secret_version: int | None = None


async def get_by_key(session: AsyncSession, idempotency_key: str) -> MintOperation | None:
    return (
        await session.execute(
            select(MintOperation).where(MintOperation.idempotency_key == idempotency_key)
        )
    ).scalar_one_or_none()


# Built once (values bound at execution), so the compiled statement is reused.
_INSERT_NEW: Final[dict[str, Any]] = {
    name: module.insert(MintOperation).on_conflict_do_nothing().returning(MintOperation)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}


async def create_or_get(session: AsyncSession, new: NewMintOperation) -> tuple[MintOperation, bool]:
    """Record the intent, or return the one already recorded under the same key.

    Returns ``(operation, created)``. Two racing callers with one key get one row. On
    PostgreSQL and SQLite that is one statement, ``INSERT ... ON CONFLICT DO NOTHING
    RETURNING``: the loser waits for the winner's commit, inserts nothing and reads the
    winner's row. On MySQL the insert runs in a savepoint and the loser's duplicate-key error
    sends it to the winner's row. A clash on another key than ours (the mint address derives
    from the key, so a racing twin may clash on either first) is raised as
    :class:`~core.errors.StoreConflict`.
    """
    values: dict[str, Any] = {
        "idempotency_key": new.idempotency_key,
        "kind": new.kind,
        "level": new.level,
        "owner_address": new.owner_address,
        "mint_address": new.mint_address,
        "asset_standard": new.asset_standard,
        "user_id": new.user_id,
        "metadata_uri": new.metadata_uri,
        "mint_secret_version": new.mint_secret_version,
        "state": "created",
    }
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        inserted = (await session.execute(_INSERT_NEW[dialect], values)).scalar_one_or_none()
        if inserted is not None:
            return inserted, True
        winner = await get_by_key(session, new.idempotency_key)
        if winner is None:  # the row in the way is not ours: another key holds the address
            raise StoreConflict(
                f"mint address {new.mint_address} is recorded under another key",
                constraint="uq_mint_operations_mint_address",
            )
        return winner, False
    existing = await get_by_key(session, new.idempotency_key)
    if existing is not None:
        return existing, False
    operation = MintOperation(**values)
    try:
        async with session.begin_nested():
            session.add(operation)
    except StoreConflict as conflict:
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


_TABLE: Final = cast(Table, MintOperation.__table__)


@functools.cache
def _guarded_statement(columns: tuple[str, ...], attempts: bool) -> Update:
    # One statement object per set of columns, its values bound at execution: SQLAlchemy
    # compiles it once and caches it, where a statement built per row cost about as much CPU
    # as the round trip it makes (a Core statement: no ORM bookkeeping is wanted here).
    values: dict[str, Any] = {c: bindparam(f"v_{c}", type_=_TABLE.c[c].type) for c in columns}
    if attempts:
        values["attempts"] = _TABLE.c.attempts + 1
    return (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("v_id"), _TABLE.c.state == bindparam("v_expected"))
        .values(values)
    )


async def guarded_update(
    session: AsyncSession,
    operation_id: int,
    expected: str,
    values: Mapping[str, Any],
    *,
    attempts: bool = False,
) -> bool:
    """``UPDATE mint_operations SET <values> WHERE id = :id AND state = :expected`` (and
    ``attempts + 1`` with ``attempts``): True if the row was still in ``expected`` and moved."""
    stmt = _guarded_statement(tuple(sorted(values)), attempts)
    params = {f"v_{c}": v for c, v in values.items()}
    params.update(v_id=operation_id, v_expected=expected)
    connection = await session.connection()
    result = await connection.execute(stmt, params)
    return bool(result.rowcount == 1)


async def guarded_update_alike(
    session: AsyncSession,
    operation_ids: Sequence[int],
    expected: str,
    values: Mapping[str, Any],
    *,
    attempts: bool = False,
) -> int:
    """The same change of each of ``operation_ids`` still in ``expected``, in one statement
    (``WHERE id IN (...) AND state = :expected``); returns how many rows moved. Which ones is
    not known when that is fewer: the caller then rolls back and goes row by row."""
    stmt = update(_TABLE).where(_TABLE.c.id.in_(list(operation_ids)), _TABLE.c.state == expected)
    if attempts:
        stmt = stmt.values(attempts=_TABLE.c.attempts + 1)
    connection = await session.connection()
    result = await connection.execute(stmt.values(dict(values)))
    return int(result.rowcount)
