"""Guarded status changes of a user NFT, shared by everyone who sees the chain.

The mint worker, the indexer and the reconciler may all see the same confirmation, burn or
activation. Each change is one ``UPDATE ... WHERE status IN (:expected)``: whoever gets there
first moves the row and writes the event to the outbox in the same transaction; the others
find it done (``False``) and write nothing, so one chain fact gives exactly one event.

The caller owns the transaction: commit after the call, together with whatever else the same
chain fact changed (the read model, a cursor, a mint operation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.repos import outbox
from store.tables import UserNft

#: The Redis Stream (and outbox topic) of NFT lifecycle events.
NFT_EVENTS: Final = "nft-events"

# status -> the statuses it may be reached from. ``failed`` only ever follows ``pending``: an
# operation is failed only once it provably never landed.
_ALLOWED_FROM: Final[dict[str, tuple[str, ...]]] = {
    "unlocked": ("pending",),
    "active": ("unlocked",),
    "burned": ("pending", "unlocked", "active"),
    "failed": ("pending",),
}
_STAMP: Final[dict[str, str]] = {
    "unlocked": "unlocked_at",
    "active": "activated_at",
    "burned": "burned_at",
}
# The event each status change announces (``failed`` is an operator matter, not a user event).
_EVENT: Final[dict[str, str | None]] = {
    "unlocked": "unlocked",
    "active": "activated",
    "burned": "burned",
    "failed": None,
}


@dataclass(frozen=True, slots=True)
class ChainFact:
    """Where the chain said it: the slot and the transaction signature (if one)."""

    slot: int
    signature: str | None
    at: dt.datetime


async def move(
    session: AsyncSession,
    mint: str,
    to_status: str,
    fact: ChainFact,
    *,
    emit: bool = True,
    extra: dict[str, Any] | None = None,
) -> UserNft | None:
    """Move the NFT at ``mint`` to ``to_status`` if it is in a status that may precede it.

    Returns the moved row, or ``None`` when there is no such NFT or someone already moved it.
    With ``emit`` the matching event goes to the outbox (an upgrade passes ``False`` and writes
    its one ``upgraded`` event itself).
    """
    allowed = _ALLOWED_FROM[to_status]
    values: dict[str, Any] = {"status": to_status}
    stamp = _STAMP.get(to_status)
    if stamp is not None:
        values[stamp] = fact.at
    result = await session.execute(
        update(UserNft)
        .where(UserNft.mint_address == mint, UserNft.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    nft = await _get(session, mint)
    event = _EVENT[to_status]
    if emit and event is not None:
        await emit_event(session, nft, event, fact, extra)
    return nft


async def revert(session: AsyncSession, mint: str, *, from_status: str, to_status: str) -> bool:
    """Undo a change whose slot was dropped by a fork (the journal knows both statuses).

    Guarded like :func:`move`: it only applies while the row is still in ``from_status``.
    """
    values: dict[str, Any] = {"status": to_status}
    stamp = _STAMP.get(from_status)
    if stamp is not None:
        values[stamp] = None
    result = await session.execute(
        update(UserNft)
        .where(UserNft.mint_address == mint, UserNft.status == from_status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def emit_event(
    session: AsyncSession,
    nft: UserNft,
    event_type: str,
    fact: ChainFact,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write one NFT event to the outbox; its outbox id is the event id consumers dedupe on."""
    payload = {
        "type": event_type,
        "user_id": nft.user_id,
        "mint": nft.mint_address,
        "level": nft.level,
        "kind": nft.kind,
        "slot": fact.slot,
        "signature": fact.signature,
        "at": fact.at.isoformat(),
        **(extra or {}),
    }
    await outbox.enqueue(session, NFT_EVENTS, event_type, payload, user_id=nft.user_id)


async def statuses(session: AsyncSession, mints: Sequence[str]) -> dict[str, str]:
    """The business status of each known mint (unknown mints are absent)."""
    if not mints:
        return {}
    rows = await session.execute(
        select(UserNft.mint_address, UserNft.status).where(UserNft.mint_address.in_(list(mints)))
    )
    return {mint: status for mint, status in rows}


async def _get(session: AsyncSession, mint: str) -> UserNft:
    # populate_existing: the UPDATE above bypassed the identity map.
    return (
        await session.execute(
            select(UserNft)
            .where(UserNft.mint_address == mint)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
