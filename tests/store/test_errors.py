"""Driver errors leave the store as ``core.errors``, naming the constraint, on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.errors import InputError, RetryableStoreError, StoreConflict, StoreError
from store.engine import create_engine, session_factory
from store.repos import users
from store.tables import AssetRow, Badge, Trade, User, UserNft

_SERVERS_ONLY = pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


async def _user(engine: AsyncEngine, wallet: str) -> int:
    async with session_factory(engine)() as s:
        user = await users.get_or_create_user(s, wallet)
        await s.commit()
        return user.id


async def _conflict(session: AsyncSession, *rows: Any) -> StoreConflict:
    session.add_all(rows)
    with pytest.raises(StoreConflict) as clash:
        await session.commit()  # the caller's own commit is translated too
    await session.rollback()
    return clash.value


async def test_duplicate_unique_key(session: AsyncSession) -> None:
    session.add(User(wallet_address="W1"))
    await session.commit()
    clash = await _conflict(session, User(wallet_address="W1"))
    assert clash.constraint == "uq_users_wallet_address"
    assert clash.details == {"constraint": "uq_users_wallet_address"}
    assert "W1" not in clash.message  # names the rule, not the value


async def test_duplicate_composite_key(engine: AsyncEngine, session: AsyncSession) -> None:
    user_id = await _user(engine, "W2")
    await users.add_badge(session, user_id, "whale")
    await session.commit()
    clash = await _conflict(session, Badge(user_id=user_id, badge_type="whale"))
    assert clash.constraint == "uq_badges_user_id_badge_type"


async def test_duplicate_primary_key(session: AsyncSession) -> None:
    row = {"mint": "M1", "standard": "token2022", "creators": [], "last_slot": 1}
    await session.execute(insert(AssetRow).values(row))
    await session.commit()
    with pytest.raises(StoreConflict) as clash:
        await session.execute(insert(AssetRow).values(row))
    assert clash.value.constraint == "pk_assets"


async def test_missing_parent(session: AsyncSession) -> None:
    clash = await _conflict(session, Trade(user_id=999_999, total_usd_price=Decimal(1)))
    assert clash.constraint == "fk_trades_user_id_users"


async def test_missing_parent_among_several_keys(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user_id = await _user(engine, "W3")
    clash = await _conflict(session, UserNft(user_id=user_id, level=99, mint_address="M-lvl"))
    assert clash.constraint == "fk_user_nfts_level_nft_tiers"
    clash = await _conflict(session, UserNft(user_id=999_999, level=1, mint_address="M-usr"))
    assert clash.constraint == "fk_user_nfts_user_id_users"


async def test_parent_still_referenced(engine: AsyncEngine, session: AsyncSession) -> None:
    user_id = await _user(engine, "W4")
    await users.add_trade(session, user_id, Decimal(1), NOW)
    await session.commit()
    with pytest.raises(StoreConflict) as clash:
        await session.execute(delete(User).where(User.id == user_id))
    assert clash.value.constraint == "fk_trades_user_id_users"


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("traded_at", dt.datetime(2026, 1, 1), "naive_datetime"),
        ("total_usd_price", Decimal("0.000000001"), "invalid_money"),
        ("total_usd_price", "lots", "invalid_money"),
    ],
)
async def test_type_checks_are_input_errors(
    engine: AsyncEngine, session: AsyncSession, column: str, value: Any, code: str
) -> None:
    user_id = await _user(engine, "W5")
    values = {"user_id": user_id, "total_usd_price": Decimal(1), "traded_at": NOW, column: value}
    with pytest.raises(InputError) as refused:
        await session.execute(insert(Trade).values(values))
    assert refused.value.code == code
    assert not isinstance(refused.value, sqlalchemy.exc.SQLAlchemyError)


async def test_value_longer_than_its_column(session: AsyncSession) -> None:
    session.add(User(wallet_address="x" * 45))  # an address column holds 44
    with pytest.raises(InputError) as refused:
        await session.flush()
    assert refused.value.code == "value_too_long"
    assert refused.value.details == {"length": 45, "limit": 44}


# SQLite keeps any length; BoundedString is the only check there.
@_SERVERS_ONLY
async def test_database_refuses_too_long_where_it_checks(
    session: AsyncSession, backend: str
) -> None:
    """Past the type check (raw SQL), PostgreSQL and strict MySQL refuse it themselves."""
    statement = text(
        "INSERT INTO users (wallet_address, created_at, updated_at) VALUES (:w, :t, :t)"
    )
    with pytest.raises(InputError) as refused:
        await session.execute(statement, {"w": "x" * 45, "t": NOW.replace(tzinfo=None)})
    assert refused.value.code == "value_refused"


async def _short_lock_wait(session: AsyncSession, backend: str) -> None:
    """Make ``session`` give up on a held lock at once instead of waiting (its connection is
    thrown away afterwards, so the setting never reaches another test)."""
    statement = {
        "sqlite": "PRAGMA busy_timeout = 0",
        "postgres": "SET lock_timeout = '50ms'",
        "mysql": "SET SESSION innodb_lock_wait_timeout = 1",
    }[backend]
    await session.execute(text(statement))


async def test_lock_wait_timeout_is_retryable(engine: AsyncEngine, backend: str) -> None:
    user_id = await _user(engine, "W6")
    factory = session_factory(engine)
    change = update(User).where(User.id == user_id).values(wallet_address="W6b")
    async with factory() as holder, factory() as waiter:
        await _short_lock_wait(waiter, backend)
        await holder.execute(change)  # the row lock (SQLite: the file's write lock)
        with pytest.raises(RetryableStoreError):
            await waiter.execute(change)
        await (await waiter.connection()).invalidate()
        await holder.rollback()


async def _settled(work: Awaitable[Any]) -> str:
    try:
        await work
    except RetryableStoreError:
        return "aborted"
    return "done"


async def _wait_until_blocked(engine: AsyncEngine, backend: str) -> None:
    """Until some transaction waits for a row lock (no timing: the server says so)."""
    query = {
        "postgres": "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()",
        "mysql": "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'",
    }[backend]
    async with engine.connect() as conn:
        while not (await conn.execute(text(query))).scalar_one():
            await asyncio.sleep(0.01)
            await conn.rollback()


# SQLite has one writer at a time: it cannot deadlock on rows.
@_SERVERS_ONLY
async def test_deadlock_is_retryable(engine: AsyncEngine, backend: str) -> None:
    first_id, second_id = await _user(engine, "W7"), await _user(engine, "W8")
    factory = session_factory(engine)

    def touch(user_id: int) -> Any:
        return update(User).where(User.id == user_id).values(updated_at=NOW)

    async with factory() as one, factory() as two:
        await one.execute(touch(first_id))
        await two.execute(touch(second_id))
        crossing = asyncio.create_task(_settled(one.execute(touch(second_id))))
        await _wait_until_blocked(engine, backend)
        outcomes = [await _settled(two.execute(touch(first_id))), await crossing]
        assert sorted(outcomes) == ["aborted", "done"]  # the server broke the cycle once
        await one.rollback()
        await two.rollback()


async def _server_connection_id(session: AsyncSession, backend: str) -> int:
    query = "SELECT pg_backend_pid()" if backend == "postgres" else "SELECT CONNECTION_ID()"
    return int((await session.execute(text(query))).scalar_one())


# SQLite is a file in this process: there is no connection to lose.
@_SERVERS_ONLY
async def test_lost_connection_is_retryable(engine: AsyncEngine, backend: str) -> None:
    factory = session_factory(engine)
    async with factory() as victim:
        server_id = await _server_connection_id(victim, backend)
        async with factory() as admin:
            if backend == "postgres":
                await admin.execute(text("SELECT pg_terminate_backend(:id)"), {"id": server_id})
            else:
                await admin.execute(text(f"KILL {server_id}"))
        with pytest.raises(RetryableStoreError):
            await victim.execute(select(User.id))
    async with factory() as again:  # the pool dropped the dead connection
        assert (await again.execute(select(User.id))).all() == []


# SQLite has no server to reach.
@_SERVERS_ONLY
async def test_unreachable_server_is_retryable(backend: str) -> None:
    url = {
        "postgres": "postgresql+asyncpg://postgres@127.0.0.1:1/test",
        "mysql": "mysql+asyncmy://root@127.0.0.1:1/test",
    }[backend]
    engine = create_engine(url)
    try:
        with pytest.raises(RetryableStoreError):
            async with engine.connect() as conn:
                await conn.execute(select(1))
    finally:
        await engine.dispose()


async def test_other_driver_errors_are_store_errors(session: AsyncSession) -> None:
    with pytest.raises(StoreError) as failed:
        await session.execute(text("SELECT * FROM no_such_table"))
    assert type(failed.value) is StoreError
