"""The few statements that differ between SQLite, PostgreSQL and MySQL, written once."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Table,
    UniqueConstraint,
    any_,
    bindparam,
    insert,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.errors import StoreConflict
from store.types import BoundedString


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def among(
    session: AsyncSession,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Sequence[Any],
) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY($1)`` with one array parameter: an
    expanded ``IN`` renders (and casts) a placeholder per value at every execution, which at a
    thousand values a query cost more than the query."""
    if _dialect(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


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
    stmt = module.insert(table).on_conflict_do_nothing()
    await execute_many(session, ("insert_ignore", table.name, tuple(rows[0])), stmt, rows)


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


_Column = Callable[[list[Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled once for executemany: its SQL, the bind names in order with their
    type's bind processing of a whole column, and the Python-side defaults SQLAlchemy would
    have filled in."""

    sql: str
    binds: tuple[tuple[str, _Column | None], ...]
    defaults: tuple[tuple[str, Any], ...]


def _column_processor(type_: Any, dialect: Dialect) -> _Column | None:
    """A column's values through its type's bind processor, as a list: a bounded string checks
    the lengths of the whole column at once (the same check and error as one by one)."""
    if isinstance(type_, BoundedString):
        return type_.column_processor(dialect)
    processor = type_._cached_bind_processor(dialect)
    if processor is None:
        return None
    return lambda values: list(map(processor, values))


_PLANS: dict[tuple[str, Hashable], _Plan] = {}


def _plan(dialect: Dialect, key: Hashable, stmt: Any, columns: Sequence[str]) -> _Plan:
    found = _PLANS.get((dialect.name, key))
    if found is not None:
        return found
    compiled: Any = stmt.compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
    order = compiled.positiontup or list(compiled.binds)
    defaults: list[tuple[str, Any]] = []
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        default = column.onupdate if compiled.isupdate else column.default
        defaults.append((column.key, default))
    plan = _Plan(
        str(compiled),
        tuple((name, _column_processor(compiled.binds[name].type, dialect)) for name in order),
        tuple(defaults),
    )
    _PLANS[(dialect.name, key)] = plan
    return plan


async def execute_many(
    session: AsyncSession, key: Hashable, stmt: Any, rows: Sequence[dict[str, Any]]
) -> None:
    """``session.execute(stmt, rows)`` for rows that all have the same keys, with the per-row
    work of SQLAlchemy's executemany cut to each value's bind processor: the statement is
    compiled once per dialect and ``key`` (the caller's name for it), each row becomes a tuple
    in the compiled order (values through their type's processor: datetimes, JSON, booleans,
    bounded strings checked as always), and the tuples go to the driver in one executemany.
    Python-side column defaults (``created_at``, ``updated_at``) are evaluated once for the
    statement, as one multi-row statement would."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    plan = _plan(dialect, key, stmt, list(rows[0]))
    fixed: dict[str, Any] = {}
    for name, default in plan.defaults:
        value = default.arg(None) if default.is_callable else default.arg
        fixed[name] = value
    # Column by column (C-level itemgetter, map and zip), not a generator per value: at
    # thousands of rows a batch the per-value Python frames cost more than the driver.
    columns: list[Sequence[Any]] = []
    for name, processor in plan.binds:
        if name in fixed:
            value = processor([fixed[name]])[0] if processor else fixed[name]
            columns.append([value] * len(rows))
            continue
        raw = list(map(itemgetter(name), rows))
        columns.append(processor(raw) if processor else raw)
    params = list(zip(*columns, strict=True)) if columns else [() for _ in rows]
    await connection.exec_driver_sql(plan.sql, params)


async def update_many(
    session: AsyncSession,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
) -> None:
    """Set ``columns`` of the rows of ``table`` whose ``key`` column is each row's ``v_key``,
    the values under ``v_<column>``. On PostgreSQL one statement for all of them (an UPDATE
    joined to the unnested arrays of the values: an executemany of UPDATEs runs row by row on
    the server), elsewhere an :func:`execute_many`. ``onupdate`` columns are set once."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or len(rows) < 2:
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("v_key"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        await execute_many(session, ("update", table.name, tuple(columns)), stmt, rows)
        return
    quote = dialect.identifier_preparer.quote
    targets = [(f"v_{c}", table.c[c]) for c in columns]
    arrays = [("v_key", table.c[key]), *targets]
    touched = [c for c in table.columns if c.onupdate is not None and c.key not in columns]
    sets = [f"{quote(column.name)} = v.{quote(name)}" for name, column in targets]
    sets += [f"{quote(c.name)} = ${len(arrays) + i + 1}" for i, c in enumerate(touched)]
    unnest = ", ".join(
        f"${i + 1}::{column.type.compile(dialect=dialect)}[]"
        for i, (_, column) in enumerate(arrays)
    )
    # Only the table's own identifiers are formatted in (quoted); every value is bound.
    name, names = quote(table.name), ", ".join(quote(name) for name, _ in arrays)
    where = f"{name}.{quote(table.c[key].name)} = v.v_key"
    sets_sql = ", ".join(sets)
    sql = f"UPDATE {name} SET {sets_sql} FROM unnest({unnest}) AS v({names}) WHERE {where}"  # noqa: S608
    params: list[Any] = []
    for name, column in arrays:
        processor = _column_processor(column.type, dialect)
        values = list(map(itemgetter(name), rows))
        params.append(processor(values) if processor else values)
    for column in touched:
        default: Any = column.onupdate
        value = default.arg(None) if default.is_callable else default.arg
        processor = column.type._cached_bind_processor(dialect)
        params.append(processor(value) if processor else value)
    await connection.exec_driver_sql(sql, tuple(params))
