"""Repository functions and schema invariants, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.errors import ConflictError, InputError, StoreConflict
from store.engine import session_factory
from store.repos import mint_operations, nfts, outbox, read_model, tiers, users
from store.tables import AssetRow, MintOperation, Trade, UserNft

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.UTC)


def _new_op(key: str, mint: str, user_id: int | None = None) -> mint_operations.NewMintOperation:
    return mint_operations.NewMintOperation(
        idempotency_key=key,
        kind="claim",
        level=1,
        owner_address="Owner1111111111111111111111111111111111111",
        mint_address=mint,
        asset_standard="token2022",
        user_id=user_id,
    )


async def test_tiers_are_seeded_as_configuration(session: AsyncSession) -> None:
    ladder = await tiers.list_tiers(session, kind="tier")
    assert [t.level for t in ladder] == [1, 2, 3, 4, 5]
    assert [t.badges_required for t in ladder] == [0, 2, 4, 6, 8]
    assert ladder[0].min_volume_usd == Decimal("100000")
    assert ladder[4].min_volume_usd == Decimal("50000000")
    assert ladder[4].fee_reduction_pct == Decimal("55")
    special = await tiers.list_tiers(session, kind="competition")
    assert [(t.name, t.min_volume_usd) for t in special] == [("Trophy Breeder", None)]


async def test_trading_volume_is_exact(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Wallet1")
    assert await users.trading_volume(session, user.id) == Decimal(0)
    for amount in ("0.1", "0.2", "49999999.70000000", "0.00000001"):
        await users.add_trade(session, user.id, Decimal(amount), NOW)
    await session.commit()
    assert await users.trading_volume(session, user.id) == Decimal("50000000.00000001")


async def test_money_refuses_sub_unit_precision(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Wallet2")
    session.add(Trade(user_id=user.id, total_usd_price=Decimal("1.000000001")))
    with pytest.raises(InputError, match="decimal places") as refused:
        await session.flush()
    assert refused.value.code == "invalid_money"


async def test_timestamps_come_back_as_aware_utc(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Wallet3")
    local = NOW.astimezone(dt.timezone(dt.timedelta(hours=8)))
    trade = await users.add_trade(session, user.id, Decimal(1), local)
    await session.commit()
    session.expunge_all()
    loaded = await session.get(Trade, trade.id)
    assert loaded is not None
    assert loaded.traded_at == NOW
    assert loaded.traded_at.tzinfo is not None
    assert loaded.traded_at.utcoffset() == dt.timedelta(0)


async def test_get_or_create_user_races_to_one_row(engine: AsyncEngine) -> None:
    factory = session_factory(engine)

    async def create() -> int:
        async with factory() as s:
            user = await users.get_or_create_user(s, "RaceWallet")
            await s.commit()
            return user.id

    # No error is accepted: the loser's unique-key conflict is absorbed, nothing aborts.
    ids = await asyncio.gather(*(create() for _ in range(4)))
    assert len(set(ids)) == 1
    async with factory() as s:
        found = await users.get_user_by_wallet(s, "RaceWallet")
        assert found is not None
        assert found.id == ids[0]


async def test_idempotency_key_gives_one_operation(engine: AsyncEngine) -> None:
    factory = session_factory(engine)

    async def claim(n: int) -> int:
        async with factory() as s:
            op, _ = await mint_operations.create_or_get(s, _new_op("claim:u1:l1", f"Mint{n}"))
            await s.commit()
            return op.id

    ids = set(await asyncio.gather(*(claim(n) for n in range(5))))
    assert len(ids) == 1
    async with factory() as s:
        rows = (await s.execute(select(MintOperation))).scalars().all()
        assert [r.idempotency_key for r in rows] == ["claim:u1:l1"]
        again, created = await mint_operations.create_or_get(s, _new_op("claim:u1:l1", "Other"))
        assert not created
        assert again.id in ids
        assert again.mint_address == rows[0].mint_address


async def test_mint_address_is_unique_across_operations(session: AsyncSession) -> None:
    await mint_operations.create_or_get(session, _new_op("k1", "SameMint"))
    with pytest.raises(StoreConflict) as clash:
        await mint_operations.create_or_get(session, _new_op("k2", "SameMint"))
    assert clash.value.constraint == "uq_mint_operations_mint_address"


async def _user_nft(session: AsyncSession, user_id: int, mint: str, status: str, kind: str) -> None:
    session.add(UserNft(user_id=user_id, level=1, mint_address=mint, status=status, kind=kind))
    await session.flush()


async def test_at_most_one_live_tier_nft_per_user(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Holder")
    other = await users.get_or_create_user(session, "Other")
    await _user_nft(session, user.id, "M-burned", "burned", "tier")
    await _user_nft(session, user.id, "M-live", "unlocked", "tier")
    await _user_nft(session, user.id, "M-pending", "pending", "tier")  # an upgrade in flight
    await _user_nft(session, user.id, "M-trophy", "active", "competition")
    await _user_nft(session, other.id, "M-other", "active", "tier")
    await session.commit()
    live = await nfts.live_tier_nft(session, user.id)
    assert live is not None
    assert live.mint_address == "M-live"

    for mint, status, key in (
        ("M-second", "active", "uq_user_nfts_live_tier_user_id"),
        ("M-second-pending", "pending", "uq_user_nfts_pending_tier_user_id"),
    ):
        with pytest.raises(StoreConflict) as clash:
            async with session.begin_nested():
                await _user_nft(session, user.id, mint, status, "tier")
        assert clash.value.constraint == key

    # Burning the old one frees the slot for the upgraded NFT, in one transaction.
    live.status = "burned"
    pending = await nfts.get_by_mint(session, "M-pending")
    assert pending is not None
    await session.flush()
    pending.status = "unlocked"
    await session.commit()
    assert (await nfts.live_tier_nft(session, user.id)).mint_address == "M-pending"  # type: ignore[union-attr]


async def test_status_values_are_checked(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Checked")
    with pytest.raises(InputError) as refused:
        await _user_nft(session, user.id, "M-bad", "minted-ish", "tier")
    assert refused.value.details["constraint"] == "ck_user_nfts_status"


async def _due_operations(engine: AsyncEngine, count: int) -> None:
    async with session_factory(engine)() as s:
        for n in range(count):
            await mint_operations.create_or_get(s, _new_op(f"due{n}", f"DueMint{n}"))
        later, _ = await mint_operations.create_or_get(s, _new_op("later", "LaterMint"))
        later.next_attempt_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        await s.commit()


async def test_claim_due_skips_rows_other_workers_hold(engine: AsyncEngine, backend: str) -> None:
    factory = session_factory(engine)
    await _due_operations(engine, 4)
    now = dt.datetime.now(dt.UTC)

    async def second_worker() -> set[int]:
        async with factory() as second:
            theirs = await mint_operations.claim_due(second, ["created"], now, limit=10)
            ids = {o.id for o in theirs}
            await second.rollback()
            return ids

    async with factory() as first:
        mine = await mint_operations.claim_due(first, ["created"], now, limit=2)
        assert len(mine) == 2
        waiting = asyncio.create_task(second_worker())
        if backend != "sqlite":
            # Row locks: the second worker skips the held rows without waiting for this one.
            theirs = await waiting
        for operation in mine:
            operation.state = "sent"
        await first.commit()
    # SQLite: the second worker waited for the write lock, then saw the rows already sent.
    theirs = await waiting
    assert theirs.isdisjoint({o.id for o in mine})
    assert len(theirs) == 2  # the other two due rows; "later" is not due


async def test_concurrent_workers_never_share_a_claim(engine: AsyncEngine, backend: str) -> None:
    await _due_operations(engine, 40)
    factory = session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    claimed: list[int] = []

    async def worker() -> None:
        while True:
            async with factory() as s:
                batch = await mint_operations.claim_due(s, ["created"], now, limit=3)
                if not batch:
                    return
                for operation in batch:
                    operation.state = "sent"
                await asyncio.sleep(0)  # let the other workers try to claim the same rows
                await s.commit()
                claimed.extend(o.id for o in batch)

    await asyncio.gather(*(worker() for _ in range(6)))
    assert len(claimed) == 40
    assert len(set(claimed)) == 40


async def test_guarded_updates_move_only_rows_still_in_the_expected_state(
    engine: AsyncEngine,
) -> None:
    await _due_operations(engine, 3)
    factory = session_factory(engine)
    async with factory() as s:
        ids = sorted((await s.execute(select(MintOperation.id))).scalars())[:3]
    first, second, third = ids
    signed = {"state": "signed", "signed_tx": b"\x01\x02", "last_error": None}
    async with factory() as s, s.begin():
        assert await mint_operations.guarded_update(s, first, "created", signed, attempts=True)
        # The second writer read the row as ``created`` too: it finds it moved.
        assert not await mint_operations.guarded_update(s, first, "created", signed)
    sent = {"state": "sent", "next_attempt_at": NOW}
    async with factory() as s, s.begin():
        # One statement for the batch says how many moved (not which): the first had moved.
        assert await mint_operations.guarded_update_alike(s, ids, "created", sent) == 2
    async with factory() as s, s.begin():
        moved = await mint_operations.guarded_update_alike(
            s, [second, third], "sent", {"state": "confirmed"}, attempts=True
        )
        assert moved == 2
    async with factory() as s:
        rows = {
            o.id: o
            for o in (await s.execute(select(MintOperation).where(MintOperation.id.in_(ids))))
            .scalars()
            .all()
        }
    assert (rows[first].state, rows[first].signed_tx, rows[first].attempts) == (
        "signed",
        b"\x01\x02",
        1,
    )
    assert [(rows[i].state, rows[i].attempts) for i in (second, third)] == [("confirmed", 1)] * 2
    assert rows[second].next_attempt_at == NOW


async def test_events_are_recorded_once(session: AsyncSession) -> None:
    event = {
        "mint": "MintE",
        "kind": "transfer",
        "signature": "Sig1",
        "instruction_index": 2,
        "slot": 10,
        "from_owner": "A",
        "to_owner": "B",
        "finalized": False,
        "created_at": NOW,
    }
    assert await read_model.add_events(session, [event]) == 1
    assert await read_model.add_events(session, [event, {**event, "instruction_index": 3}]) == 1
    await session.commit()
    assert [e.instruction_index for e in await read_model.history(session, "MintE")] == [2, 3]


async def test_cursor_moves_with_its_rows(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    async with factory() as s:
        s.add(AssetRow(mint="MintC", standard="token2022", owner="O", last_slot=5))
        await read_model.set_cursor(s, "live", 5, "SigA")
        await s.rollback()  # a crash before commit loses both, never one of them
        assert await read_model.get_cursor(s, "live") is None
        assert await read_model.get_asset(s, "MintC") is None

        s.add(AssetRow(mint="MintC", standard="token2022", owner="O", last_slot=5))
        await read_model.set_cursor(s, "live", 5, "SigA", finalized_slot=3)
        await s.commit()
        await read_model.set_cursor(s, "live", 9, "SigB")
        await s.commit()
        s.expunge_all()
        cursor = await read_model.get_cursor(s, "live")
        assert cursor is not None
        assert (cursor.slot, cursor.signature, cursor.finalized_slot) == (9, "SigB", 3)


async def test_assets_by_owner_hides_burnt(session: AsyncSession) -> None:
    session.add_all(
        [
            AssetRow(mint="M1", standard="token2022", owner="Alice", burnt=False, last_slot=1),
            AssetRow(mint="M2", standard="token2022", owner="Alice", burnt=True, last_slot=2),
            AssetRow(mint="M3", standard="metaplex", owner="Bob", burnt=False, last_slot=3),
        ]
    )
    await session.commit()
    assert [a.mint for a in await read_model.assets_by_owner(session, "Alice")] == ["M1"]
    both = await read_model.assets_by_owner(session, "Alice", include_burnt=True)
    assert [a.mint for a in both] == ["M1", "M2"]


async def test_reorg_journal_undo_order_and_pruning(session: AsyncSession) -> None:
    await read_model.journal(session, 10, "assets", "M1", None)
    await read_model.journal(session, 11, "assets", "M1", {"owner": "A"})
    await read_model.journal(session, 11, "assets", "M2", {"owner": "B"})
    await session.commit()
    undo = await read_model.journal_since(session, 11)
    assert [(j.slot, j.row_key) for j in undo] == [(11, "M2"), (11, "M1")]
    assert undo[1].before == {"owner": "A"}
    assert await read_model.prune_journal(session, 10) == 1
    await session.commit()
    assert len(await read_model.journal_since(session, 0)) == 2


async def test_qualification_keeps_latest_check(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Qualifier")
    for volume, ok in (("99999.99", False), ("100000", True)):
        await nfts.record_qualification(
            session,
            user_id=user.id,
            level=1,
            qualified=ok,
            volume_usd=Decimal(volume),
            badges_count=0,
            at=NOW,
        )
    await session.commit()
    rows = (await session.execute(text("SELECT qualified FROM user_nft_qualifications"))).all()
    assert [bool(r[0]) for r in rows] == [True]


async def test_badges_are_consumed_all_or_nothing(session: AsyncSession) -> None:
    user = await users.get_or_create_user(session, "Badger")
    for kind in ("first-trade", "streak", "whale"):
        await users.add_badge(session, user.id, kind)
    assert await users.count_usable_badges(session, user.id) == 3
    with pytest.raises(ConflictError, match="3 usable badges, 4 needed") as short:
        await users.consume_badges(session, user.id, 4, upgrade_id=0, at=NOW)
    assert short.value.code == "not_enough_badges"
    assert await users.count_usable_badges(session, user.id) == 3


async def test_outbox_claims_and_publishes(engine: AsyncEngine, backend: str) -> None:
    factory = session_factory(engine)
    async with factory() as s:
        for n in range(3):
            await outbox.enqueue(s, "nft-events", "unlocked", {"n": n}, user_id=1)
        await s.commit()
    async with factory() as s:
        batch = await outbox.claim_unpublished(s, limit=2)
        assert [e.payload["n"] for e in batch] == [0, 1]
        await outbox.mark_published(s, [e.id for e in batch], NOW)
        await s.commit()
        rest = await outbox.claim_unpublished(s)
        assert [e.payload["n"] for e in rest] == [2]
