"""Migrations run up and down on every database, and match the SQLAlchemy models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from store import migrate
from store.engine import create_engine, session_factory
from store.tables import NftTier, metadata
from tests.services import fresh_database


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_up_down_up_without_drift(backend: str, tmp_path: pytest.TempPathFactory) -> None:
    async with fresh_database(backend, str(tmp_path)) as url:
        engine = create_engine(url)
        try:
            assert await migrate.current_revision(engine) is None

            await migrate.upgrade(engine)
            assert await migrate.current_revision(engine) == migrate.head_revision()
            async with engine.connect() as conn:
                assert await conn.run_sync(_diff) == []
                assert {t.name for t in metadata.sorted_tables} <= await conn.run_sync(_tables)

            await migrate.downgrade(engine, "base")
            assert await migrate.current_revision(engine) is None
            async with engine.connect() as conn:
                assert await conn.run_sync(_tables) <= {"alembic_version"}

            await migrate.upgrade(engine)
            async with session_factory(engine)() as session:
                tiers = (await session.execute(select(NftTier))).scalars().all()
                assert len(tiers) == 6
        finally:
            await engine.dispose()


async def test_each_step_downgrades_cleanly(backend: str, tmp_path: pytest.TempPathFactory) -> None:
    async with fresh_database(backend, str(tmp_path)) as url:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine, "0001")
            async with engine.connect() as conn:
                assert await conn.run_sync(_diff) == []  # 0002 changes data only
            await migrate.upgrade(engine, "0002")
            await migrate.downgrade(engine, "-1")
            assert await migrate.current_revision(engine) == "0001"
            async with session_factory(engine)() as session:
                assert (await session.execute(select(NftTier))).first() is None
        finally:
            await engine.dispose()
