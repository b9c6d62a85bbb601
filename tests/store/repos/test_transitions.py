"""store.repos.transitions: guarded status changes, one event per chain fact, on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from store.engine import session_factory
from store.repos import transitions, users
from store.repos.transitions import ChainFact
from store.tables import EventOutbox, UserNft

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


async def _pending_nft(session: AsyncSession, wallet: str, mint: str) -> UserNft:
    user = await users.get_or_create_user(session, wallet)
    nft = UserNft(user_id=user.id, level=1, mint_address=mint, status="pending")
    session.add(nft)
    await session.commit()
    return nft


async def _events(session: AsyncSession, mint: str) -> list[str]:
    rows = (await session.execute(select(EventOutbox).order_by(EventOutbox.id))).scalars()
    return [row.event_type for row in rows if row.payload["mint"] == mint]


async def test_lifecycle_moves_once_and_writes_one_event_each(session: AsyncSession) -> None:
    mint = "TransitionMint1111111111111111111111111111"
    await _pending_nft(session, "TransitionWallet1", mint)
    fact = ChainFact(slot=10, signature="sig1", at=NOW)
    assert await transitions.move(session, mint, "active", fact) is None  # not from pending
    moved = await transitions.move(session, mint, "unlocked", fact)
    assert moved is not None
    assert moved.status == "unlocked"
    assert moved.unlocked_at == NOW
    assert await transitions.move(session, mint, "unlocked", fact) is None  # already done
    assert (await transitions.move(session, mint, "active", fact)) is not None
    assert (await transitions.move(session, mint, "burned", fact)) is not None
    assert await transitions.move(session, mint, "burned", fact) is None
    await session.commit()
    assert await _events(session, mint) == ["unlocked", "activated", "burned"]
    event = (
        (await session.execute(select(EventOutbox).where(EventOutbox.event_type == "burned")))
        .scalars()
        .all()[-1]
    )
    assert event.topic == transitions.NFT_EVENTS
    assert event.payload["slot"] == 10
    assert event.payload["signature"] == "sig1"


async def test_revert_undoes_only_the_status_it_names(session: AsyncSession) -> None:
    mint = "TransitionMint2222222222222222222222222222"
    await _pending_nft(session, "TransitionWallet2", mint)
    fact = ChainFact(slot=11, signature=None, at=NOW)
    await transitions.move(session, mint, "unlocked", fact, emit=False)
    assert not await transitions.revert(session, mint, from_status="active", to_status="unlocked")
    assert await transitions.revert(session, mint, from_status="unlocked", to_status="pending")
    await session.commit()
    assert await transitions.statuses(session, [mint, "unknown"]) == {mint: "pending"}
    assert await _events(session, mint) == []


async def test_concurrent_confirmations_move_the_row_once(engine: AsyncEngine) -> None:
    mint = "TransitionMint3333333333333333333333333333"
    sessions = session_factory(engine)
    async with sessions() as session:
        await _pending_nft(session, "TransitionWallet3", mint)

    async def confirm() -> bool:
        async with sessions() as session:
            moved = await transitions.move(session, mint, "unlocked", ChainFact(12, "s", NOW))
            await session.commit()
            return moved is not None

    results = await asyncio.gather(*(confirm() for _ in range(8)))
    assert results.count(True) == 1
    async with sessions() as session:
        assert await _events(session, mint) == ["unlocked"]
