"""The statements written once for every backend skip duplicates and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InputError
from store.dialect import insert_ignore
from store.tables import AssetEvent

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
