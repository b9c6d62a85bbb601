"""Migration 0003 runs up and down on every database and leaves 0002's schema behind."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from store import migrate
from store.engine import create_engine
from tests.services import fresh_database


def _shape(conn: Connection) -> tuple[set[str], set[str]]:
    found = inspect(conn)
    return set(found.get_table_names()), {c["name"] for c in found.get_columns("mint_operations")}


async def test_0003_up_and_down(backend: str, tmp_path: pytest.TempPathFactory) -> None:
    async with fresh_database(backend, str(tmp_path)) as url:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine, "0003")
            async with engine.connect() as conn:
                tables, columns = await conn.run_sync(_shape)
            assert "collections" in tables
            assert "mint_secret_version" in columns

            await migrate.downgrade(engine, "0002")
            async with engine.connect() as conn:
                tables, columns = await conn.run_sync(_shape)
            assert "collections" not in tables
            assert "mint_secret_version" not in columns
            assert "signed_tx" in columns

            await migrate.upgrade(engine, "0003")
            assert await migrate.current_revision(engine) == "0003"
        finally:
            await engine.dispose()
