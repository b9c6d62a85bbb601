"""Guarded status changes of a user NFT, shared by everyone who sees the chain.

The mint worker, the indexer and the reconciler may all see the same confirmation, burn or
activation. Each change is one ``UPDATE ... WHERE status IN (:expected)``: whoever gets there
first moves the row and writes the event to the outbox in the same transaction; the others
find it done (``False``) and write nothing, so one chain fact gives exactly one event.

The caller owns the transaction: commit after the call, together with whatever else the same
chain fact changed (the read model, a cursor, a mint operation).

An upgrade is one chain fact touching two NFTs: one transaction burns the old NFT and mints the
new one. Whoever sees it first (the indexer through :func:`move`, the minting engine through
:func:`settle_upgrade`) settles the whole upgrade at once: old NFT ``burned``, new one
``unlocked``, the badges consumed, the request and its mint operation ``confirmed``, and one
``upgraded`` event (no ``burned`` nor ``unlocked`` event of its own). The other finds it done.
A fork that drops the slot of that transaction reopens it (:func:`unsettle_upgrade`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Table, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.repos import outbox
from store.tables import Badge, EventOutbox, MintOperation, NftUpgradeRequest, UserNft

#: The Redis Stream (and outbox topic) of NFT lifecycle events.
NFT_EVENTS: Final = "nft-events"

# Core tables for the batched path (move_many): no ORM bookkeeping per row.
_NFTS: Final = cast(Table, UserNft.__table__)
_OUTBOX: Final = cast(Table, EventOutbox.__table__)

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


#: Upgrade requests not yet settled: recorded (``pending``) or signed and sent (``submitted``).
UPGRADE_OPEN: Final = ("pending", "submitted")
#: The mint state of an upgrade: the owner signs it, no worker ever sends or re-signs it.
AWAITING_OWNER: Final = "awaiting_owner"


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
    With ``emit`` the matching event goes to the outbox.

    The mint of an open upgrade's new NFT becoming ``unlocked``, or its old NFT ``burned`` by
    that upgrade's own transaction, settles the whole upgrade (:func:`settle_upgrade`, one
    ``upgraded`` event), whatever ``emit`` says.
    """
    request_id = await _open_upgrade(session, mint, to_status, fact)
    if request_id is not None:
        if await settle_upgrade(session, request_id, fact) is None:
            return None  # settled meanwhile by whoever saw it first
        return await _get(session, mint)
    return await _move(session, mint, to_status, fact, emit=emit, extra=extra)


async def move_many(
    session: AsyncSession,
    moves: Sequence[tuple[str, ChainFact]],
    to_status: str,
    *,
    emit: bool = True,
) -> list[str]:
    """:func:`move` of each ``(mint, fact)`` to ``to_status``, in a few statements for the batch.

    The outcome is that of calling :func:`move` for each, the open upgrades' mints first:
    the same guarded change, the same events. A mint given twice moves once, with its first
    fact. Returns the mints that moved (the upgrades settled here included), in input order.

    The statements do not depend on the batch's size: one lookup of open upgrades, one
    guarded ``UPDATE`` per distinct ``fact.at`` (``RETURNING`` the rows it moved; MariaDB has
    no ``UPDATE ... RETURNING``, so there a ``SELECT ... FOR UPDATE`` names them first), one
    executemany ``INSERT`` into the outbox. The open upgrades, rare, settle one by one through
    :func:`settle_upgrade`. Rows of ``user_nfts`` already in the session are not refreshed.
    """
    facts: dict[str, ChainFact] = {}
    for mint, fact in moves:
        facts.setdefault(mint, fact)
    if not facts:
        return []
    upgrades = await _open_upgrades(session, facts, to_status)
    moved: set[str] = set()
    for mint, request_id in upgrades.items():
        if await settle_upgrade(session, request_id, facts[mint]) is not None:
            moved.add(mint)
    plain = {mint: fact for mint, fact in facts.items() if mint not in upgrades}
    rows = await _update_many(session, plain, to_status)
    moved.update(rows)
    event = _EVENT[to_status]
    if emit and event is not None and rows:
        # Input order, as one move after the other would have written them.
        events = [
            _outbox_row(rows[mint], mint, event, fact)
            for mint, fact in plain.items()
            if mint in rows
        ]
        connection = await session.connection()
        await connection.execute(insert(_OUTBOX), events)
    return [mint for mint in facts if mint in moved]


async def _update_many(
    session: AsyncSession, facts: dict[str, ChainFact], to_status: str
) -> dict[str, tuple[int, int, str]]:
    """The guarded UPDATE of :func:`move_many`; each moved mint's ``(user_id, level, kind)``."""
    allowed = _ALLOWED_FROM[to_status]
    stamp = _STAMP.get(to_status)
    by_time: dict[dt.datetime | None, list[str]] = {}
    for mint, fact in facts.items():
        # Only the stamp depends on the fact: one statement per distinct time.
        by_time.setdefault(fact.at if stamp is not None else None, []).append(mint)
    connection = await session.connection()
    returning = connection.dialect.update_returning
    moved: dict[str, tuple[int, int, str]] = {}
    for at, mints in by_time.items():
        values: dict[str, Any] = {"status": to_status}
        if stamp is not None:
            values[stamp] = at
        guard = (_NFTS.c.mint_address.in_(mints), _NFTS.c.status.in_(allowed))
        columns = (_NFTS.c.mint_address, _NFTS.c.user_id, _NFTS.c.level, _NFTS.c.kind)
        if returning:
            stmt = update(_NFTS).where(*guard).values(values).returning(*columns)
            found = (await connection.execute(stmt)).all()
        else:
            # The row locks keep the rows named here in ``allowed`` until the UPDATE below.
            found = (
                await connection.execute(select(*columns).where(*guard).with_for_update())
            ).all()
            if found:
                names = [row.mint_address for row in found]
                await connection.execute(
                    update(_NFTS).where(_NFTS.c.mint_address.in_(names), guard[1]).values(values)
                )
        for row in found:
            moved[row.mint_address] = (row.user_id, row.level, row.kind)
    return moved


def _outbox_row(
    nft: tuple[int, int, str], mint: str, event_type: str, fact: ChainFact
) -> dict[str, Any]:
    """The outbox row :func:`emit_event` writes, as parameters of an executemany INSERT."""
    user_id, level, kind = nft
    return {
        "topic": NFT_EVENTS,
        "event_type": event_type,
        "user_id": user_id,
        "payload": _payload(user_id, mint, level, kind, event_type, fact, None),
    }


async def _move(
    session: AsyncSession,
    mint: str,
    to_status: str,
    fact: ChainFact,
    *,
    emit: bool,
    extra: dict[str, Any] | None = None,
) -> UserNft | None:
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


async def settle_upgrade(session: AsyncSession, request_id: int, fact: ChainFact) -> UserNft | None:
    """The upgrade transaction of an open request landed: settle it, once.

    Returns the new NFT, or ``None`` when the request is no longer open (someone settled or
    closed it first: nothing is written).
    """
    result = await session.execute(
        update(NftUpgradeRequest)
        .where(NftUpgradeRequest.id == request_id, NftUpgradeRequest.status.in_(UPGRADE_OPEN))
        .values(status="confirmed", error=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    request = (
        await session.execute(
            select(NftUpgradeRequest)
            .where(NftUpgradeRequest.id == request_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    assert request.mint_operation_id is not None
    op = await session.get(MintOperation, request.mint_operation_id)
    old = await session.get(UserNft, request.from_user_nft_id)
    assert op is not None
    assert old is not None
    old_mint, old_level = old.mint_address, old.level
    await session.execute(
        update(MintOperation)
        .where(MintOperation.id == op.id, MintOperation.state == AWAITING_OWNER)
        .values(state="confirmed", confirmed_slot=fact.slot, last_error=None)
        .execution_options(synchronize_session=False)
    )
    # Burn first: a user may hold one live tier NFT (a unique column says so).
    await _move(session, old_mint, "burned", fact, emit=False)
    await _move(session, op.mint_address, "unlocked", fact, emit=False)
    await session.execute(
        update(Badge)
        .where(Badge.reserved_by_upgrade_id == request_id)
        .values(
            status="consumed",
            consumed_at=fact.at,
            consumed_by_upgrade_id=request_id,
            reserved_by_upgrade_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    new = await _get(session, op.mint_address)
    await emit_event(
        session,
        new,
        "upgraded",
        fact,
        {
            "from_mint": old_mint,
            "from_level": old_level,
            "to_level": new.level,
            "upgrade_request_id": request_id,
        },
    )
    return new


async def unsettle_upgrade(session: AsyncSession, new_mint: str) -> int | None:
    """A fork dropped the slot that settled the upgrade minting ``new_mint``: reopen it.

    The request is open again (``submitted``: its transaction was signed and seen once), its
    mint operation waits for the owner again (no worker sends an upgrade), and the badges it
    consumed are reserved for it again, as they were when it was signed. The owner's signed
    transaction may land again on the surviving chain (then it settles again) or expire (then
    the request expires and the badges are free). Returns the request's id, or ``None`` when
    ``new_mint`` is no upgrade's or its upgrade is not settled. The NFTs' own statuses are the
    caller's (:func:`revert`, from the journal)."""
    request_id: int | None = (
        await session.execute(
            select(NftUpgradeRequest.id)
            .join(MintOperation, MintOperation.id == NftUpgradeRequest.mint_operation_id)
            .where(
                MintOperation.mint_address == new_mint,
                MintOperation.kind == "upgrade",
                NftUpgradeRequest.status == "confirmed",
            )
        )
    ).scalar_one_or_none()
    if request_id is None:
        return None
    result = await session.execute(
        update(NftUpgradeRequest)
        .where(NftUpgradeRequest.id == request_id, NftUpgradeRequest.status == "confirmed")
        .values(status="submitted")
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    await session.execute(
        update(MintOperation)
        .where(MintOperation.mint_address == new_mint, MintOperation.state == "confirmed")
        .values(state=AWAITING_OWNER, confirmed_slot=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Badge)
        .where(Badge.consumed_by_upgrade_id == request_id)
        .values(
            # Consuming kept no other trace of the status: an activated badge has its stamp.
            status=case((Badge.activated_at.is_not(None), "activated"), else_="owned"),
            consumed_at=None,
            consumed_by_upgrade_id=None,
            reserved_by_upgrade_id=request_id,
        )
        .execution_options(synchronize_session=False)
    )
    return request_id


async def _open_upgrade(
    session: AsyncSession, mint: str, to_status: str, fact: ChainFact
) -> int | None:
    """The open upgrade request this change of ``mint`` belongs to, if any."""
    if to_status == "unlocked":
        # The new mint's keypair is derived from the request: only its transaction makes it.
        found = select(NftUpgradeRequest.id).join(
            MintOperation, MintOperation.id == NftUpgradeRequest.mint_operation_id
        )
        found = found.where(MintOperation.mint_address == mint)
    elif to_status == "burned" and fact.signature is not None:
        # The old NFT burnt by the upgrade's own transaction, not by the owner on their own.
        found = (
            select(NftUpgradeRequest.id)
            .join(MintOperation, MintOperation.id == NftUpgradeRequest.mint_operation_id)
            .join(UserNft, UserNft.id == NftUpgradeRequest.from_user_nft_id)
            .where(UserNft.mint_address == mint, MintOperation.signature == fact.signature)
        )
    else:
        return None
    request_id: int | None = (
        await session.execute(
            found.where(NftUpgradeRequest.status.in_(UPGRADE_OPEN), MintOperation.kind == "upgrade")
        )
    ).scalar_one_or_none()
    return request_id


async def _open_upgrades(
    session: AsyncSession, facts: dict[str, ChainFact], to_status: str
) -> dict[str, int]:
    """:func:`_open_upgrade` of each mint at once: mint -> its open request, in input order."""
    base = select(NftUpgradeRequest.id).join(
        MintOperation, MintOperation.id == NftUpgradeRequest.mint_operation_id
    )
    base = base.where(NftUpgradeRequest.status.in_(UPGRADE_OPEN), MintOperation.kind == "upgrade")
    found: dict[str, int] = {}
    if to_status == "unlocked":
        stmt = base.add_columns(MintOperation.mint_address).where(
            MintOperation.mint_address.in_(list(facts))
        )
        found = {mint: request_id for request_id, mint in await session.execute(stmt)}
    elif to_status == "burned":
        signed = {mint: fact.signature for mint, fact in facts.items() if fact.signature}
        if signed:
            stmt = (
                base.add_columns(UserNft.mint_address, MintOperation.signature)
                .join(UserNft, UserNft.id == NftUpgradeRequest.from_user_nft_id)
                .where(
                    UserNft.mint_address.in_(list(signed)),
                    MintOperation.signature.in_(sorted(set(signed.values()))),
                )
            )
            found = {
                mint: request_id
                for request_id, mint, signature in await session.execute(stmt)
                if signed[mint] == signature
            }
    return {mint: found[mint] for mint in facts if mint in found}


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
    payload = _payload(nft.user_id, nft.mint_address, nft.level, nft.kind, event_type, fact, extra)
    await outbox.enqueue(session, NFT_EVENTS, event_type, payload, user_id=nft.user_id)


def _payload(
    user_id: int,
    mint: str,
    level: int,
    kind: str,
    event_type: str,
    fact: ChainFact,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "type": event_type,
        "user_id": user_id,
        "mint": mint,
        "level": level,
        "kind": kind,
        "slot": fact.slot,
        "signature": fact.signature,
        "at": fact.at.isoformat(),
        **(extra or {}),
    }


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
