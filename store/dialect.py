"""The few statements that differ between SQLite, PostgreSQL and MySQL, written once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def insert_ignore(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, silently skipping any that collide with a unique key. Returns rows added."""
    if not rows:
        return 0
    name = _dialect(session)
    if name == "postgresql":
        stmt: Any = postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    elif name == "sqlite":
        stmt = sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
    elif name in ("mysql", "mariadb"):
        stmt = mysql.insert(table).values(list(rows)).prefix_with("IGNORE")
    else:  # pragma: no cover - the settings refuse other databases
        raise NotImplementedError(name)
    result = await session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def upsert(
    session: AsyncSession, table: Table, row: dict[str, Any], key: Sequence[str]
) -> None:
    """Insert ``row``, or update every other column of the row with the same ``key``."""
    name = _dialect(session)
    changes = {column: value for column, value in row.items() if column not in key}
    if name in ("postgresql", "sqlite"):
        module: Any = postgresql if name == "postgresql" else sqlite
        stmt = module.insert(table).values(row)
        stmt = (
            stmt.on_conflict_do_update(index_elements=list(key), set_=changes)
            if changes
            else stmt.on_conflict_do_nothing(index_elements=list(key))
        )
    elif name in ("mysql", "mariadb"):
        stmt = mysql.insert(table).values(row)
        # An empty change list is not valid SQL; re-assigning the key is a no-op update.
        stmt = stmt.on_duplicate_key_update(changes or {key[0]: stmt.inserted[key[0]]})
    else:  # pragma: no cover
        raise NotImplementedError(name)
    await session.execute(stmt)
