"""Migrations run up and down on every database, and match the SQLAlchemy models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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


def _schema(conn: Connection) -> dict[str, tuple[list[str], list[str]]]:
    """Each table's columns and CHECK constraints (a migration may change only a CHECK)."""
    found = inspect(conn)
    return {
        table: (
            sorted(column["name"] for column in found.get_columns(table)),
            sorted(str(check["sqltext"]) for check in found.get_check_constraints(table)),
        )
        for table in found.get_table_names()
        if table != "alembic_version"
    }


def _revisions() -> list[str]:
    """Every revision, base first (the history is linear: one head)."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1, "the migration history must stay linear"
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def test_each_step_downgrades_cleanly(backend: str, tmp_path: pytest.TempPathFactory) -> None:
    """Each migration's downgrade gives back exactly the schema before it."""
    async with fresh_database(backend, str(tmp_path)) as url:
        engine = create_engine(url)
        try:
            for revision in _revisions():
                async with engine.connect() as conn:
                    before = await conn.run_sync(_schema)
                await migrate.upgrade(engine, revision)
                await migrate.downgrade(engine, "-1")
                async with engine.connect() as conn:
                    assert await conn.run_sync(_schema) == before, revision
                await migrate.upgrade(engine, revision)
                assert await migrate.current_revision(engine) == revision
            async with session_factory(engine)() as session:
                assert len((await session.execute(select(NftTier))).scalars().all()) == 6
            await migrate.downgrade(engine, "0001")
            async with session_factory(engine)() as session:  # 0002 seeds data only
                assert (await session.execute(select(NftTier))).first() is None
        finally:
            await engine.dispose()
