"""What the indexer follows and where it stopped: tracked token accounts and both ends of each
source's cursor. The caller owns the transaction (rows and cursors commit together)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, exists, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store.dialect import upsert
from store.tables import AssetEvent, AssetRow, IndexerCursor, TrackedAccount


async def assets(session: AsyncSession, mints: Iterable[str]) -> dict[str, AssetRow]:
    wanted = sorted(set(mints))
    if not wanted:
        return {}
    rows = await session.execute(select(AssetRow).where(AssetRow.mint.in_(wanted)))
    return {a.mint: a for a in rows.scalars()}


async def accounts(session: AsyncSession, addresses: Iterable[str]) -> dict[str, TrackedAccount]:
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    rows = await session.execute(select(TrackedAccount).where(TrackedAccount.address.in_(wanted)))
    return {a.address: a for a in rows.scalars()}


async def accounts_of(session: AsyncSession, mints: Iterable[str]) -> list[TrackedAccount]:
    wanted = sorted(set(mints))
    if not wanted:
        return []
    rows = await session.execute(
        select(TrackedAccount)
        .where(TrackedAccount.mint.in_(wanted))
        .order_by(TrackedAccount.address)
    )
    return list(rows.scalars())


async def followed_addresses(session: AsyncSession) -> set[str]:
    """Every tracked mint (not burnt, or burnt but not yet crawled up to its burn: a burn
    found through another address must not hide the mint's activations) and every token
    account of a tracked mint that is open, or closed but not yet crawled up to its close.

    A token account's close is often learnt through another address (a burn and close names
    the mint; the mint's history lists it) before the account's own history was crawled, and
    that history may hold what only the account names: a plain ``Transfer`` out of it, and a
    lone ``CloseAccount`` before it was opened again. So a closed account stays followed
    until its own cursor reached its close: a newer slot, or the close's own signature."""
    mints = set(
        (await session.execute(select(AssetRow.mint).where(AssetRow.burnt.is_(False)))).scalars()
    )
    return (
        mints
        | await _burnt_not_crawled(session)
        | await _open_accounts(session)
        | await _closed_not_crawled(session)
    )


async def _burnt_not_crawled(session: AsyncSession) -> set[str]:
    """Burnt mints whose own cursor has not reached their burn: the burn may have been found
    through the token account first, and the mint's history holds what only it names (an
    activation memo). Without a burn in the history (an import found the mint closed), until
    the mint's history has been crawled at all."""
    cursor = aliased(IndexerCursor)
    rows = (
        await session.execute(
            select(AssetRow.mint, cursor.slot, cursor.signature)
            .outerjoin(cursor, cursor.name == literal("a:") + AssetRow.mint)
            .where(AssetRow.burnt.is_(True))
        )
    ).all()
    crawled = {mint: (slot, signature) for mint, slot, signature in rows if slot is not None}
    burns: dict[str, tuple[int, int, str]] = {}
    if crawled:
        found = await session.execute(
            select(
                AssetEvent.mint, AssetEvent.slot, AssetEvent.position, AssetEvent.signature
            ).where(AssetEvent.mint.in_(sorted(crawled)), AssetEvent.kind == "burn")
        )
        for mint, slot, position, signature in found:
            burns[mint] = max(
                burns.get(mint, (slot, position, signature)), (slot, position, signature)
            )
    out = {mint for mint, slot, _ in rows if slot is None}
    for mint, (at, last) in crawled.items():
        burn = burns.get(mint)
        if burn is not None and at <= burn[0] and last != burn[2]:
            out.add(mint)  # its cursor is at or before the burn's slot, not at the burn
    return out


async def _open_accounts(session: AsyncSession) -> set[str]:
    open_accounts = await session.execute(
        select(TrackedAccount.address)
        .join(AssetRow, AssetRow.mint == TrackedAccount.mint)
        .where(TrackedAccount.closed.is_(False))
    )
    return set(open_accounts.scalars())


async def _closed_not_crawled(session: AsyncSession) -> set[str]:
    """Closed token accounts of tracked mints whose own cursor has not reached their close."""
    cursor = aliased(IndexerCursor)
    # The close's own history row (same mint, slot and position as the account's state).
    reached = exists().where(
        AssetEvent.mint == TrackedAccount.mint,
        AssetEvent.kind == "close",
        AssetEvent.slot == TrackedAccount.slot,
        AssetEvent.position == TrackedAccount.position,
        AssetEvent.signature == cursor.signature,
    )
    rows = await session.execute(
        select(TrackedAccount.address)
        .join(AssetRow, AssetRow.mint == TrackedAccount.mint)
        .outerjoin(cursor, cursor.name == literal("a:") + TrackedAccount.address)
        .where(
            TrackedAccount.closed.is_(True),
            or_(
                cursor.name.is_(None),
                cursor.slot < TrackedAccount.slot,
                and_(cursor.slot == TrackedAccount.slot, ~reached),
            ),
        )
    )
    return set(rows.scalars())


async def ownership_before(
    session: AsyncSession, mint: str, slot: int, position: int
) -> tuple[bool, str | None]:
    """The owner the history shows just before (slot, position): the receiver of the last mint
    or transfer event before it, with whether the history holds one at all."""
    row = (
        await session.execute(
            select(AssetEvent.to_owner)
            .where(
                AssetEvent.mint == mint,
                AssetEvent.kind.in_(("mint", "transfer")),
                (AssetEvent.slot < slot)
                | ((AssetEvent.slot == slot) & (AssetEvent.position < position)),
            )
            .order_by(AssetEvent.slot.desc(), AssetEvent.position.desc())
            .limit(1)
        )
    ).first()
    return (False, None) if row is None else (True, row[0])


async def event_kinds(session: AsyncSession, mint: str) -> list[AssetEvent]:
    """The history of one mint in chain order."""
    rows = await session.execute(
        select(AssetEvent)
        .where(AssetEvent.mint == mint)
        .order_by(AssetEvent.slot, AssetEvent.position, AssetEvent.instruction_index)
    )
    return list(rows.scalars())


async def get_cursor(session: AsyncSession, name: str) -> IndexerCursor | None:
    return await session.get(IndexerCursor, name)


async def move_cursor(
    session: AsyncSession,
    name: str,
    *,
    newest: tuple[int, str] | None = None,
    oldest: tuple[int, str] | None = None,
    backfill_complete: bool | None = None,
) -> None:
    """Advance either end of a source's cursor (an end only ever moves outward: newer for
    ``newest``, older for ``oldest``)."""
    current = await get_cursor(session, name)
    row: dict[str, Any] = {
        "name": name,
        "slot": current.slot if current else 0,
        "signature": current.signature if current else None,
        "finalized_slot": current.finalized_slot if current else 0,
        "oldest_slot": current.oldest_slot if current else None,
        "oldest_signature": current.oldest_signature if current else None,
        "backfill_complete": current.backfill_complete if current else False,
    }
    if newest is not None and (current is None or newest[0] >= current.slot):
        row["slot"], row["signature"] = newest
    if oldest is not None and (row["oldest_slot"] is None or oldest[0] <= row["oldest_slot"]):
        row["oldest_slot"], row["oldest_signature"] = oldest
    if backfill_complete is not None:
        row["backfill_complete"] = backfill_complete
    await upsert(session, IndexerCursor.__table__, row, key=("name",))  # type: ignore[arg-type]
    if current is not None:
        await session.refresh(current)
