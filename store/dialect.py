"""The few statements that differ between SQLite, PostgreSQL and MySQL, written once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, UniqueConstraint, insert, text
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import StoreConflict


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def insert_ignore(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping any that collide with a unique key. Returns rows added.

    Only a duplicate key is skipped: a value that does not fit, a CHECK or a foreign key is an
    error as on any insert.
    """
    if not rows:
        return 0
    name = _dialect(session)
    if name in ("mysql", "mariadb"):
        return await _insert_each(session, table, rows)
    if name == "postgresql":
        stmt: Any = postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    elif name == "sqlite":
        stmt = sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
    else:  # pragma: no cover - the settings refuse other databases
        raise NotImplementedError(name)
    result = await session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def insert_ignore_many(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """:func:`insert_ignore` as one executemany of one compiled statement (cached, however many
    rows; a multi-row VALUES is compiled anew for each row count), for callers that know which
    rows are new and need no count."""
    if not rows:
        return
    name = _dialect(session)
    if name in ("mysql", "mariadb"):
        await _insert_each(session, table, rows)
        return
    module: Any = postgresql if name == "postgresql" else sqlite
    await session.execute(module.insert(table).on_conflict_do_nothing(), list(rows))


async def _insert_each(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    # MySQL has no "skip duplicates only": INSERT IGNORE also turns an over-long value, a bad
    # foreign key or a CHECK into a warning (and truncates or drops the row); a no-op
    # ON DUPLICATE KEY UPDATE counts an untouched duplicate as one affected row under the
    # CLIENT_FOUND_ROWS flag SQLAlchemy sets, so it cannot say what was added. One savepoint per
    # row keeps both the strictness and the count.
    keys = _unique_keys(table)
    added = 0
    for row in rows:
        try:
            async with session.begin_nested():
                await session.execute(insert(table).values(row))
        except StoreConflict as conflict:
            if conflict.constraint not in keys:
                raise
        else:
            added += 1
    return added


def _unique_keys(table: Table) -> set[str]:
    names = {f"pk_{table.name}"}
    names.update(
        str(constraint.name)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint) and constraint.name
    )
    names.update(str(index.name) for index in table.indexes if index.unique and index.name)
    return names


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


async def lock_for_claim(session: AsyncSession) -> None:
    """Make the session's transaction the database's only writer, where rows cannot be locked.

    PostgreSQL and MySQL lock the claimed rows (``FOR UPDATE SKIP LOCKED``). SQLite ignores that
    clause and starts a transaction at its first write, so two workers' SELECTs would see the same
    due rows: ``BEGIN IMMEDIATE`` takes the write lock before the read instead, and the next
    worker waits for this one's commit and then sees its changes. A transaction that has written
    already holds that lock (the driver only opens one before a write).
    """
    if _dialect(session) != "sqlite":
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    if not raw.driver_connection.in_transaction:  # type: ignore[union-attr]
        await connection.execute(text("BEGIN IMMEDIATE"))
