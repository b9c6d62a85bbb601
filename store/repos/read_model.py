"""The read model: assets, their history, cursors and the reorg journal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import among, insert_ignore, insert_ignore_many, upsert
from store.repos.tracking import chunks
from store.tables import AssetEvent, AssetRow, IndexerCursor, ReorgJournal, UserNft


async def get_asset(session: AsyncSession, mint: str) -> AssetRow | None:
    return await session.get(AssetRow, mint)


async def assets_by_owner(
    session: AsyncSession, owner: str, *, include_burnt: bool = False, limit: int = 1000
) -> list[AssetRow]:
    stmt = select(AssetRow).where(AssetRow.owner == owner).order_by(AssetRow.mint).limit(limit)
    if not include_burnt:
        stmt = stmt.where(AssetRow.burnt.is_(False))
    return list((await session.execute(stmt)).scalars())


async def add_events(session: AsyncSession, events: Sequence[dict[str, Any]]) -> int:
    """Append history rows; a row already there (same signature/instruction/mint/kind) is kept."""
    return await insert_ignore(session, AssetEvent.__table__, events)  # type: ignore[arg-type]


async def append_events(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """:func:`add_events` for any number of rows in one executemany, without the count (the
    projection knows which of its rows are new)."""
    await insert_ignore_many(session, AssetEvent.__table__, events)  # type: ignore[arg-type]


async def event_keys(
    session: AsyncSession, signatures: Iterable[str]
) -> set[tuple[str, int, str, str]]:
    """The unique keys (signature, instruction index, mint, kind) of the stored history rows
    of these transactions."""
    out: set[tuple[str, int, str, str]] = set()
    for part in chunks(signatures):
        rows = await session.execute(
            select(
                AssetEvent.signature, AssetEvent.instruction_index, AssetEvent.mint, AssetEvent.kind
            ).where(among(session, AssetEvent.signature, part))
        )
        out.update((s, i, m, k) for s, i, m, k in rows)
    return out


async def events_of(
    session: AsyncSession, mints: Iterable[str], kinds: Sequence[str]
) -> list[AssetEvent]:
    """The history rows of these kinds of these mints, in chain order."""
    out: list[AssetEvent] = []
    for part in chunks(mints):
        rows = await session.execute(
            select(AssetEvent).where(
                among(session, AssetEvent.mint, part), AssetEvent.kind.in_(kinds)
            )
        )
        out += rows.scalars()
    return sorted(out, key=lambda e: (e.slot, e.position, e.instruction_index, e.mint, e.kind))


async def user_nfts(session: AsyncSession, mints: Iterable[str]) -> dict[str, UserNft]:
    """The user NFTs at these mint addresses (the business rows the history moves)."""
    out: dict[str, UserNft] = {}
    for part in chunks(mints):
        rows = await session.execute(
            select(UserNft).where(among(session, UserNft.mint_address, part))
        )
        out.update((n.mint_address, n) for n in rows.scalars() if n.mint_address is not None)
    return out


async def history(session: AsyncSession, mint: str, limit: int = 100) -> list[AssetEvent]:
    return list(
        (
            await session.execute(
                select(AssetEvent)
                .where(AssetEvent.mint == mint)
                .order_by(AssetEvent.slot, AssetEvent.instruction_index, AssetEvent.id)
                .limit(limit)
            )
        ).scalars()
    )


async def get_cursor(session: AsyncSession, name: str) -> IndexerCursor | None:
    return await session.get(IndexerCursor, name)


async def set_cursor(
    session: AsyncSession,
    name: str,
    slot: int,
    signature: str | None,
    finalized_slot: int | None = None,
) -> None:
    """Move a cursor; call it in the transaction that wrote the rows the cursor covers."""
    row: dict[str, Any] = {"name": name, "slot": slot, "signature": signature}
    if finalized_slot is not None:
        row["finalized_slot"] = finalized_slot
    else:
        current = await get_cursor(session, name)
        row["finalized_slot"] = current.finalized_slot if current is not None else 0
    await upsert(session, IndexerCursor.__table__, row, key=("name",))  # type: ignore[arg-type]


async def journal(
    session: AsyncSession, slot: int, table_name: str, row_key: str, before: Any
) -> None:
    """Remember a row's before-image for a change made at a not-yet-final slot."""
    session.add(ReorgJournal(slot=slot, table_name=table_name, row_key=row_key, before=before))


async def journal_since(session: AsyncSession, slot: int) -> list[ReorgJournal]:
    """Journal entries at or after ``slot``, newest first: the order to undo them in."""
    return list(
        (
            await session.execute(
                select(ReorgJournal)
                .where(ReorgJournal.slot >= slot)
                .order_by(ReorgJournal.slot.desc(), ReorgJournal.id.desc())
            )
        ).scalars()
    )


async def prune_journal(session: AsyncSession, finalized_slot: int) -> int:
    """Forget before-images of slots that are final: they can no longer be rolled back."""
    result = await session.execute(delete(ReorgJournal).where(ReorgJournal.slot <= finalized_slot))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
