"""What the indexer follows and where it stopped: tracked token accounts and both ends of each
source's cursor. The caller owns the transaction (rows and cursors commit together)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import upsert
from store.tables import AssetEvent, AssetRow, IndexerCursor, TrackedAccount

#: Values per ``IN (...)``: well under every dialect's limit on bound parameters (SQLite 32766,
#: asyncpg 32767, MySQL 65535), so a batch of any size is a handful of queries.
IN_CHUNK: Final = 1000


def chunks(values: Iterable[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    """The distinct ``values``, sorted, in lists of at most ``size``."""
    wanted = sorted(set(values))
    for i in range(0, len(wanted), size):
        yield wanted[i : i + size]


async def assets(session: AsyncSession, mints: Iterable[str]) -> dict[str, AssetRow]:
    out: dict[str, AssetRow] = {}
    for part in chunks(mints):
        rows = await session.execute(select(AssetRow).where(AssetRow.mint.in_(part)))
        out.update((a.mint, a) for a in rows.scalars())
    return out


async def accounts(session: AsyncSession, addresses: Iterable[str]) -> dict[str, TrackedAccount]:
    out: dict[str, TrackedAccount] = {}
    for part in chunks(addresses):
        rows = await session.execute(select(TrackedAccount).where(TrackedAccount.address.in_(part)))
        out.update((a.address, a) for a in rows.scalars())
    return out


async def accounts_of(session: AsyncSession, mints: Iterable[str]) -> list[TrackedAccount]:
    """The token accounts of these mints, in address order."""
    out: list[TrackedAccount] = []
    for part in chunks(mints):
        rows = await session.execute(select(TrackedAccount).where(TrackedAccount.mint.in_(part)))
        out += rows.scalars()
    return sorted(out, key=lambda a: a.address)


async def followed_addresses(session: AsyncSession) -> set[str]:
    """Every tracked mint (not burnt, or burnt but its own history never crawled: a burn
    found through another address must not hide the mint's activations) and every still-open
    token account of a tracked mint."""
    mints = set(
        (await session.execute(select(AssetRow.mint).where(AssetRow.burnt.is_(False)))).scalars()
    )
    burnt = set(
        (await session.execute(select(AssetRow.mint).where(AssetRow.burnt.is_(True)))).scalars()
    )
    if burnt:
        crawled = set(
            (
                await session.execute(
                    select(IndexerCursor.name).where(
                        IndexerCursor.name.in_(sorted(f"a:{m}" for m in burnt))
                    )
                )
            ).scalars()
        )
        mints |= {m for m in burnt if f"a:{m}" not in crawled}
    open_accounts = await session.execute(
        select(TrackedAccount.address)
        .join(AssetRow, AssetRow.mint == TrackedAccount.mint)
        .where(TrackedAccount.closed.is_(False))
    )
    return mints | set(open_accounts.scalars())


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
