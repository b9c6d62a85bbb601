"""store.repos.transitions: guarded status changes, one event per chain fact, on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sql_events
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from store.engine import session_factory
from store.repos import transitions, users
from store.repos.transitions import ChainFact
from store.tables import Badge, EventOutbox, MintOperation, NftUpgradeRequest, User, UserNft

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


# --- upgrades: one chain fact, two NFTs, one event ------------------------------------------


@dataclass
class _Upgrade:
    request_id: int
    old: str
    new: str
    signature: str


async def _open_upgrade(session: AsyncSession, tag: str, *, commit: bool = True) -> _Upgrade:
    """A user holding a level-1 NFT, with an open upgrade to level 2 reserving two badges."""
    user = await users.get_or_create_user(session, f"UpgradeWallet{tag}")
    await session.flush()
    old = UserNft(user_id=user.id, level=1, mint_address=f"UpgradeOld{tag}", status="unlocked")
    session.add(old)
    op = MintOperation(
        idempotency_key=f"upgrade:{tag}",
        kind="upgrade",
        level=2,
        owner_address=user.wallet_address,
        mint_address=f"UpgradeNew{tag}",
        asset_standard="token2022",
        user_id=user.id,
        state=transitions.AWAITING_OWNER,
        signature=f"UpgradeSig{tag}",
    )
    session.add(op)
    await session.flush()
    session.add(
        UserNft(
            user_id=user.id,
            level=2,
            mint_address=op.mint_address,
            status="pending",
            mint_operation_id=op.id,
        )
    )
    request = NftUpgradeRequest(
        user_id=user.id, from_user_nft_id=old.id, to_level=2, mint_operation_id=op.id
    )
    session.add(request)
    await session.flush()
    for number in range(3):
        badge = await users.add_badge(session, user.id, f"badge-{number}")
        badge.reserved_by_upgrade_id = request.id if number < 2 else None
    if commit:
        await session.commit()
    else:
        await session.flush()
    return _Upgrade(request.id, old.mint_address, op.mint_address, f"UpgradeSig{tag}")


async def _settled(session: AsyncSession, up: _Upgrade) -> tuple[Any, ...]:
    session.expire_all()
    request = await session.get(NftUpgradeRequest, up.request_id)
    assert request is not None
    op = await session.get(MintOperation, request.mint_operation_id)
    assert op is not None
    badges = (await session.execute(select(Badge.status).order_by(Badge.id))).scalars().all()
    events = (await session.execute(select(EventOutbox).order_by(EventOutbox.id))).scalars().all()
    return (
        await transitions.statuses(session, [up.old, up.new]),
        request.status,
        op.state,
        op.confirmed_slot,
        list(badges),
        [(e.event_type, e.payload["mint"]) for e in events],
    )


def _done(up: _Upgrade) -> tuple[Any, ...]:
    return (
        {up.old: "burned", up.new: "unlocked"},
        "confirmed",
        "confirmed",
        20,
        ["consumed", "consumed", "owned"],
        [("upgraded", up.new)],
    )


async def test_the_new_nft_unlocked_settles_the_whole_upgrade(session: AsyncSession) -> None:
    """The indexer sees the upgrade's mint first (transitions.move, as its projection calls
    it): one ``upgraded`` event, no ``burned`` nor ``unlocked``; the rest finds it done."""
    up = await _open_upgrade(session, "A")
    fact = ChainFact(slot=20, signature=up.signature, at=NOW)
    moved = await transitions.move(session, up.new, "unlocked", fact)
    assert moved is not None
    assert (moved.mint_address, moved.status) == (up.new, "unlocked")
    assert await transitions.move(session, up.old, "burned", fact) is None
    assert await transitions.settle_upgrade(session, up.request_id, fact) is None
    await session.commit()
    assert await _settled(session, up) == _done(up)
    event = (await session.execute(select(EventOutbox))).scalar_one()
    assert event.payload["from_mint"] == up.old
    assert (event.payload["from_level"], event.payload["to_level"]) == (1, 2)
    assert event.payload["signature"] == up.signature


async def test_the_old_nft_burnt_by_the_upgrade_settles_the_whole_upgrade(
    session: AsyncSession,
) -> None:
    up = await _open_upgrade(session, "B")
    fact = ChainFact(slot=20, signature=up.signature, at=NOW)
    moved = await transitions.move(session, up.old, "burned", fact)
    assert moved is not None
    assert (moved.mint_address, moved.status) == (up.old, "burned")
    assert await transitions.move(session, up.new, "unlocked", fact) is None
    await session.commit()
    assert await _settled(session, up) == _done(up)


async def test_the_engine_settling_first_leaves_the_indexer_nothing(session: AsyncSession) -> None:
    up = await _open_upgrade(session, "C")
    fact = ChainFact(slot=20, signature=up.signature, at=NOW)
    new = await transitions.settle_upgrade(session, up.request_id, fact)
    assert new is not None
    assert new.status == "unlocked"
    await session.commit()
    assert await transitions.move(session, up.old, "burned", fact) is None
    assert await transitions.move(session, up.new, "unlocked", fact) is None
    await session.commit()
    assert await _settled(session, up) == _done(up)


async def test_a_burn_by_another_transaction_is_a_plain_burn(session: AsyncSession) -> None:
    """The owner burnt the old NFT on their own: the upgrade stays open (it will fail)."""
    up = await _open_upgrade(session, "D")
    moved = await transitions.move(
        session, up.old, "burned", ChainFact(slot=21, signature="OwnBurn", at=NOW)
    )
    assert moved is not None
    await session.commit()
    statuses, request, op, _, badges, events = await _settled(session, up)
    assert statuses == {up.old: "burned", up.new: "pending"}
    assert (request, op) == ("pending", transitions.AWAITING_OWNER)
    assert badges == ["owned", "owned", "owned"]
    assert events == [("burned", up.old)]


async def test_engine_and_indexer_racing_write_one_upgraded_event(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        up = await _open_upgrade(session, "E")
    fact = ChainFact(slot=20, signature=up.signature, at=NOW)

    async def engine_side() -> bool:
        async with sessions() as session, session.begin():
            return await transitions.settle_upgrade(session, up.request_id, fact) is not None

    async def indexer_side(mint: str, status: str) -> bool:
        async with sessions() as session, session.begin():
            return await transitions.move(session, mint, status, fact) is not None

    results = await asyncio.gather(
        *(engine_side() for _ in range(3)),
        *(indexer_side(up.new, "unlocked") for _ in range(3)),
        *(indexer_side(up.old, "burned") for _ in range(3)),
        return_exceptions=True,
    )
    # A loser may also be refused by the database (a deadlock or a busy SQLite file): it
    # retries later and finds the upgrade done. Exactly one of them settled it.
    assert [r for r in results if r is True] == [True]
    assert all(r is False or isinstance(r, Exception) for r in results if r is not True)
    async with sessions() as session:
        assert await _settled(session, up) == _done(up)


async def test_a_fork_reopens_a_settled_upgrade_as_it_was_signed(session: AsyncSession) -> None:
    """The slot that settled the upgrade is dropped: the NFTs go back (the journal's
    ``revert``), the request is open again, its operation waits for the owner again, the
    badges are reserved again; the transaction landing again settles it once more."""
    up = await _open_upgrade(session, "F")
    fact = ChainFact(slot=20, signature=up.signature, at=NOW)
    assert await transitions.move(session, up.new, "unlocked", fact) is not None
    await session.commit()
    assert await _settled(session, up) == _done(up)

    # As the finality rollback undoes it: the new NFT first, then the old one.
    assert await transitions.revert(session, up.new, from_status="unlocked", to_status="pending")
    assert await transitions.unsettle_upgrade(session, up.new) == up.request_id
    assert await transitions.revert(session, up.old, from_status="burned", to_status="unlocked")
    assert await transitions.unsettle_upgrade(session, up.new) is None  # already open
    assert await transitions.unsettle_upgrade(session, up.old) is None  # not an upgrade's mint
    await session.commit()
    statuses, request, op_state, confirmed_slot, badges, _ = await _settled(session, up)
    assert statuses == {up.old: "unlocked", up.new: "pending"}
    assert (request, op_state, confirmed_slot) == ("submitted", transitions.AWAITING_OWNER, None)
    assert badges == ["owned", "owned", "owned"]
    reserved = (
        (await session.execute(select(Badge.reserved_by_upgrade_id).order_by(Badge.id)))
        .scalars()
        .all()
    )
    assert reserved == [up.request_id, up.request_id, None]

    # The owner's transaction lands again on the surviving chain, at another slot.
    again = ChainFact(slot=25, signature=up.signature, at=NOW)
    assert await transitions.move(session, up.old, "burned", again) is not None
    await session.commit()
    statuses, request, op_state, confirmed_slot, badges, events = await _settled(session, up)
    assert statuses == {up.old: "burned", up.new: "unlocked"}
    assert (request, op_state, confirmed_slot) == ("confirmed", "confirmed", 25)
    assert badges == ["consumed", "consumed", "owned"]
    assert events == [("upgraded", up.new), ("upgraded", up.new)]


# --- move_many: the batch equals one move after the other ------------------------------------

_STATUSES = ("pending", "unlocked", "active", "burned", "failed")
_TARGETS = ("unlocked", "active", "burned", "failed")
LATER = NOW + dt.timedelta(seconds=7)


async def _nfts(session: AsyncSession, statuses: list[str]) -> list[str]:
    """One NFT per status given, each its own user's (a user holds one live tier NFT)."""
    mints = []
    for number, status in enumerate(statuses):
        user = await users.get_or_create_user(session, f"ManyWallet{number}")
        await session.flush()
        mint = f"ManyMint{number}"
        session.add(UserNft(user_id=user.id, level=1, mint_address=mint, status=status))
        mints.append(mint)
    await session.flush()
    return mints


async def _outcome(session: AsyncSession) -> tuple[Any, ...]:
    """Everything a move writes, without the ids a rolled-back sequence does not give back."""
    wallets = dict((await session.execute(select(User.id, User.wallet_address))).all())
    nfts = (
        await session.execute(
            select(
                UserNft.mint_address,
                UserNft.status,
                UserNft.unlocked_at,
                UserNft.activated_at,
                UserNft.burned_at,
            ).order_by(UserNft.mint_address)
        )
    ).all()
    events = []
    for event in (await session.execute(select(EventOutbox).order_by(EventOutbox.id))).scalars():
        payload = dict(event.payload)
        assert event.user_id is not None
        assert payload.pop("user_id") == event.user_id
        payload.pop("upgrade_request_id", None)
        events.append((event.topic, event.event_type, wallets[event.user_id], payload))
    requests = (await session.execute(select(NftUpgradeRequest.status))).scalars().all()
    ops = (await session.execute(select(MintOperation.state, MintOperation.confirmed_slot))).all()
    badges = (
        (await session.execute(select(Badge.status).order_by(Badge.badge_type))).scalars().all()
    )
    return [tuple(row) for row in nfts], events, list(requests), list(ops), list(badges)


async def _both(
    session: AsyncSession,
    statuses: list[str],
    moves: list[tuple[int | None, ChainFact]],
    to_status: str,
    *,
    upgrade: bool = False,
) -> tuple[tuple[Any, ...], list[str], tuple[Any, ...], list[str]]:
    """The outcome (and the mints moved) of one ``move`` after the other, then of
    ``move_many``, each from the same rows in its own rolled-back transaction. A move's
    index ``None`` is an unknown mint; with ``upgrade``, ``-1`` and ``-2`` are an open
    upgrade's new and old mints (its moves come first: move_many settles upgrades first)."""
    results = []
    for batched in (False, True):
        mints = await _nfts(session, statuses)
        names: dict[int | None, str] = {None: "ManyUnknownMint", **dict(enumerate(mints))}
        if upgrade:
            up = await _open_upgrade(session, "Many", commit=False)
            names.update({-1: up.new, -2: up.old})
        given_moves = [(names[index], fact) for index, fact in moves]
        if batched:
            moved = await transitions.move_many(session, given_moves, to_status)
        else:
            moved = [
                mint
                for mint, fact in given_moves
                if await transitions.move(session, mint, to_status, fact) is not None
            ]
        results.append((await _outcome(session), moved))
        await session.rollback()
    (one_by_one, moved_each), (batch, moved_many) = results
    return one_by_one, moved_each, batch, moved_many


async def test_move_many_equals_one_move_after_the_other(session: AsyncSession) -> None:
    """Rows moved, rows already there (moved by someone else: no event), rows in a status
    that may not precede the target, an unknown mint, and two times (two UPDATEs)."""
    statuses = ["pending", "unlocked", "pending", "failed", "pending"]
    moves: list[tuple[int | None, ChainFact]] = [
        (4, ChainFact(30, "sigE", NOW)),
        (None, ChainFact(30, "sigU", NOW)),
        (0, ChainFact(31, "sigA", LATER)),
        (1, ChainFact(30, "sigB", NOW)),
        (3, ChainFact(30, "sigD", NOW)),
        (2, ChainFact(32, None, NOW)),
    ]
    one_by_one, moved_each, batch, moved_many = await _both(session, statuses, moves, "unlocked")
    assert batch == one_by_one
    assert moved_many == moved_each == ["ManyMint4", "ManyMint0", "ManyMint2"]
    events = batch[1]
    assert [(e[1], e[3]["mint"], e[3]["slot"]) for e in events] == [
        ("unlocked", "ManyMint4", 30),
        ("unlocked", "ManyMint0", 31),
        ("unlocked", "ManyMint2", 32),
    ]
    assert events[1][3]["at"] == LATER.isoformat()


@pytest.mark.parametrize("to_status", ["unlocked", "burned"])
async def test_move_many_settles_an_open_upgrade_in_the_batch(
    session: AsyncSession, to_status: str
) -> None:
    """The upgrade's own mint in a batch settles the whole upgrade (one ``upgraded`` event),
    the others of the batch move as usual."""
    signature = "UpgradeSigMany"
    upgrade_mint = -1 if to_status == "unlocked" else -2
    statuses = ["pending", "unlocked", "active"]
    moves: list[tuple[int | None, ChainFact]] = [
        (upgrade_mint, ChainFact(20, signature, NOW)),
        (0, ChainFact(21, "sig0", NOW)),
        (1, ChainFact(22, "sig1", NOW)),
        (2, ChainFact(23, "sig2", NOW)),
    ]
    one_by_one, moved_each, batch, moved_many = await _both(
        session, statuses, moves, to_status, upgrade=True
    )
    assert batch == one_by_one
    assert moved_many == moved_each
    assert batch[2] == ["confirmed"]
    assert batch[3] == [("confirmed", 20)]
    assert ("upgraded", "UpgradeNewMany") in [(e[1], e[3]["mint"]) for e in batch[1]]


async def test_move_many_by_another_signature_is_a_plain_burn(session: AsyncSession) -> None:
    """The old NFT of an open upgrade burnt by some other transaction: a plain burn."""
    moves: list[tuple[int | None, ChainFact]] = [(-2, ChainFact(20, "OtherSig", NOW))]
    one_by_one, _, batch, moved = await _both(session, [], moves, "burned", upgrade=True)
    assert batch == one_by_one
    assert moved == ["UpgradeOldMany"]
    assert batch[2] == ["pending"]
    assert [e[1] for e in batch[1]] == ["burned"]


_FACTS = st.builds(
    ChainFact,
    slot=st.integers(1, 5),
    signature=st.sampled_from([None, "sigX", "sigY"]),
    at=st.sampled_from([NOW, LATER]),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    statuses=st.lists(st.sampled_from(_STATUSES), max_size=6),
    picks=st.lists(st.tuples(st.integers(-1, 6), _FACTS), max_size=10),
    to_status=st.sampled_from(_TARGETS),
)
async def test_move_many_equals_move_over_random_statuses(
    session: AsyncSession,
    statuses: list[str],
    picks: list[tuple[int, ChainFact]],
    to_status: str,
) -> None:
    """Any statuses, any target, any mints (unknown ones, repeated ones): the same outcome."""
    moves = [(index if 0 <= index < len(statuses) else None, fact) for index, fact in picks]
    one_by_one, moved_each, batch, moved_many = await _both(session, statuses, moves, to_status)
    assert batch == one_by_one
    # A mint given twice moves once: the first time.
    assert moved_many == list(dict.fromkeys(moved_each))
    assert moved_many == moved_each


async def test_concurrent_batches_move_each_row_once(engine: AsyncEngine) -> None:
    """Batches racing over the same rows (workers, the indexer): one event per row."""
    sessions = session_factory(engine)
    async with sessions() as session:
        mints = await _nfts(session, ["pending"] * 4)
        await session.commit()

    async def confirm(order: list[str]) -> list[str]:
        async with sessions() as session, session.begin():
            moves = [(mint, ChainFact(12, "s", NOW)) for mint in order]
            return await transitions.move_many(session, moves, "unlocked")

    results = await asyncio.gather(
        *(confirm(mints if n % 2 else mints[::-1]) for n in range(4)), return_exceptions=True
    )
    # A loser may be refused by the database (a deadlock, a busy SQLite file): it retries
    # later and finds the rows moved.
    moved = [mint for result in results if isinstance(result, list) for mint in result]
    assert sorted(moved) == sorted(mints)
    async with sessions() as session:
        for mint in mints:
            assert await _events(session, mint) == ["unlocked"]


async def test_move_many_takes_as_many_statements_for_eight_rows_as_for_two(
    engine: AsyncEngine,
) -> None:
    """The point of the batch: its statements do not grow with it (MariaDB adds a SELECT)."""
    sessions = session_factory(engine)
    async with sessions() as session:
        mints = await _nfts(session, ["pending"] * 10)
        await session.commit()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]).lstrip().upper())

    async def batch(mints: list[str]) -> int:
        statements.clear()
        sql_events.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            async with sessions() as session, session.begin():
                moves = [(mint, ChainFact(12, "s", NOW)) for mint in mints]
                assert await transitions.move_many(session, moves, "unlocked") == mints
        finally:
            sql_events.remove(engine.sync_engine, "before_cursor_execute", count)
        return len([sql for sql in statements if not sql.startswith(("BEGIN", "COMMIT"))])

    assert await batch(mints[:2]) == await batch(mints[2:])
