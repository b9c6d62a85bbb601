"""The statements written once for every backend skip duplicates and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InputError
from store.dialect import insert_ignore, insert_ignore_many, insert_many, select_among
from store.tables import AssetEvent, AssetRow, TrackedAccount

_EVENTS: Any = AssetEvent.__table__


def _event(**changes: Any) -> dict[str, Any]:
    event = {"mint": "MintD", "kind": "mint", "signature": "Sig", "slot": 1, "finalized": False}
    return {**event, **changes}


async def _count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(AssetEvent))).scalar_one())


async def test_duplicates_are_skipped_and_counted(session: AsyncSession) -> None:
    assert await insert_ignore(session, _EVENTS, [_event(), _event(slot=2)]) == 1
    assert await insert_ignore(session, _EVENTS, [_event(), _event(signature="Sig2")]) == 1
    assert await _count(session) == 2


async def test_a_value_too_long_is_an_error_not_a_truncation(session: AsyncSession) -> None:
    # MariaDB's INSERT IGNORE stored the first 88 of these 120 characters.
    with pytest.raises(InputError, match="120 characters does not fit 88"):
        await insert_ignore(session, _EVENTS, [_event(signature="S" * 120)])
    await session.rollback()
    assert await _count(session) == 0


async def test_a_refused_value_is_an_error_not_a_skip(session: AsyncSession) -> None:
    # INSERT IGNORE turns a failed CHECK into a warning and drops the row on MySQL.
    with pytest.raises(InputError) as refused:
        await insert_ignore(session, _EVENTS, [_event(signature="Ok"), _event(kind="bogus")])
    assert refused.value.details["constraint"] == "ck_asset_events_kind"
    await session.rollback()
    assert await _count(session) == 0


async def test_many_rows_skip_only_duplicates_and_get_their_defaults(session: AsyncSession) -> None:
    # One statement for all the rows on PostgreSQL (INSERT ... SELECT FROM unnest): duplicates
    # of stored rows and within the rows are skipped, the others get ids and created_at, in
    # the order given.
    await insert_ignore_many(session, _EVENTS, [_event()])
    rows = [_event(signature=f"S{i}", slot=10 - i) for i in range(3)]
    await insert_ignore_many(session, _EVENTS, [_event(), *rows, rows[1]])
    stored = (await session.execute(select(AssetEvent).order_by(AssetEvent.id))).scalars().all()
    assert [e.signature for e in stored] == ["Sig", "S0", "S1", "S2"]
    assert all(e.created_at.tzinfo is not None and e.block_time is None for e in stored)


async def test_insert_many_then_select_among_round_trips_every_type(session: AsyncSession) -> None:
    assets: Any = AssetRow.__table__
    rows = [
        {
            "mint": f"M{i}",
            "standard": "token2022",
            "burnt": i == 1,
            "creators": [{"address": f"C{i}"}],
            "metadata_fields": None if i == 2 else {"name": {"v": f"N{i}", "at": [i, 0, 0]}},
            "last_slot": 2**40 + i,
        }
        for i in range(3)
    ]
    await insert_many(session, assets, rows)
    columns = ["mint", "burnt", "creators", "metadata_fields", "last_slot", "owner"]
    found = await select_among(session, assets, columns, [("mint", ["M0", "M2", "nope"])])
    assert sorted(found) == [
        ("M0", False, [{"address": "C0"}], {"name": {"v": "N0", "at": [0, 0, 0]}}, 2**40, None),
        ("M2", False, [{"address": "C2"}], None, 2**40 + 2, None),
    ]
    # Any of several columns, each a list; a row matching both comes once; none: no query.
    accounts: Any = TrackedAccount.__table__
    account = {"mint": "M1", "owner": None, "amount": 1, "closed": True, "slot": 3}
    await insert_many(
        session,
        accounts,
        [{**account, "address": "A1", "position": 0}, {**account, "address": "A2", "position": 1}],
    )
    wanted = [("address", ["A1"]), ("mint", ["M1"])]
    found = await select_among(session, accounts, ["address", "closed", "position"], wanted)
    assert sorted(found) == [("A1", True, 0), ("A2", True, 1)]
    assert await select_among(session, accounts, ["address"], [("mint", [])]) == []
