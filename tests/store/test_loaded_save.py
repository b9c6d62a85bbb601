"""``Loaded.save`` writes new and changed rows through the driver (``store.dialect``'s
``execute_many`` and ``update_many``) with every type converted as the ORM would."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InputError
from store.repos.tracking import AssetState, Loaded
from store.tables import AssetRow


async def test_new_and_changed_rows_round_trip(session: AsyncSession) -> None:
    assets: Loaded[AssetState] = Loaded(AssetState)
    for i in range(4):
        assets[f"M{i}"] = AssetState(
            mint=f"M{i}", standard="token2022", creators=[{"a": i}], metadata_fields={"k": i}
        )
    await assets.save(session)
    await session.commit()

    again: Loaded[AssetState] = Loaded(AssetState)
    rows = await again.load(session, "mint", [f"M{i}" for i in range(4)])
    assert sorted(r.creators[0]["a"] for r in rows) == [0, 1, 2, 3]
    for row in rows:  # one set of columns for all: one statement for several rows
        row.owner, row.burnt, row.last_slot = f"O{row.mint}", True, 2**40
        row.metadata_fields = {"changed": row.mint}
    rows[0].level = 7  # another set of columns, one row
    await again.save(session)
    await session.commit()

    stored = (await session.execute(select(AssetRow).order_by(AssetRow.mint))).scalars().all()
    assert [(a.owner, a.burnt, a.last_slot) for a in stored] == [
        (f"OM{i}", True, 2**40) for i in range(4)
    ]
    assert [a.metadata_fields for a in stored] == [{"changed": f"M{i}"} for i in range(4)]
    assert [a.creators for a in stored] == [[{"a": i}] for i in range(4)]
    assert sum(a.level == 7 for a in stored) == 1
    assert all(a.updated_at.tzinfo is not None for a in stored)


async def test_a_value_too_long_is_still_refused(session: AsyncSession) -> None:
    assets: Loaded[AssetState] = Loaded(AssetState)
    assets["M"] = AssetState(mint="M", standard="token2022", name="n" * 500)
    with pytest.raises(InputError):
        await assets.save(session)


async def test_one_value_too_long_among_many_is_refused_with_its_length(
    session: AsyncSession,
) -> None:
    # The bounded strings of an executemany are checked a column at a time: the one over-long
    # value among fitting ones (and None) is still found and named, new or changed.
    assets: Loaded[AssetState] = Loaded(AssetState)
    for i, name in enumerate(["fits", None, "n" * 201, ""]):
        assets[f"M{i}"] = AssetState(mint=f"M{i}", standard="token2022", name=name)
    with pytest.raises(InputError) as refused:
        await assets.save(session)
    assert refused.value.code == "value_too_long"
    assert refused.value.details == {"length": 201, "limit": 200}
    await session.rollback()

    fitting: Loaded[AssetState] = Loaded(AssetState)
    for i in range(3):
        fitting[f"M{i}"] = AssetState(mint=f"M{i}", standard="token2022", name="fits")
    await fitting.save(session)
    await session.commit()
    again: Loaded[AssetState] = Loaded(AssetState)
    rows = await again.load(session, "mint", ["M0", "M1", "M2"])
    for row, name in zip(rows, ["still fits", "u" * 33, "ok"], strict=True):
        row.symbol = name  # one set of changed columns: one statement for the three
    with pytest.raises(InputError) as refused:
        await again.save(session)
    assert refused.value.details == {"length": 33, "limit": 32}
