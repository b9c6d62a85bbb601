"""The few statements that differ between SQLite, PostgreSQL and MySQL, written once."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Table,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter

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
    thousand values a query cost more than the query. On SQLite likewise one parameter, the
    values as a JSON array (``IN (SELECT value FROM json_each(?))``): one statement text
    whatever the count, so SQLite prepares it once, and no placeholders to render."""
    name = _dialect(session)
    if name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if name == "sqlite":
        return _in_json_list(column, bindparam(None, json.dumps(list(values)), type_=Text()))
    return column.in_(values)


def _in_json_list(column: Any, parameter: BindParameter[str]) -> ColumnElement[bool]:
    """SQLite's ``column IN (SELECT value FROM json_each(parameter))``."""
    each = func.json_each(parameter).table_valued("value")
    return column.in_(select(each.c.value).scalar_subquery())  # type: ignore[no-any-return]


def one_list_parameter(session: AsyncSession) -> bool:
    """Whether :func:`among` binds its values as one parameter (SQLite, PostgreSQL): then a
    query needs no chunking, whatever the count; MySQL's expanded ``IN`` does."""
    return _dialect(session) in ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class _Select:
    """A ``SELECT ... WHERE a IN (list) OR b IN (list)`` compiled once: its SQL, each list's
    bind processing, and each result column's processor."""

    sql: str
    order: tuple[int, ...]  # the lists' places among the parameters
    lists: tuple[Callable[[list[Any]], Any], ...]
    results: tuple[Callable[[Any], Any] | None, ...]


_SELECTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], _Select] = {}


async def select_among(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    wanted: Sequence[tuple[str, Sequence[Any]]],
) -> list[tuple[Any, ...]]:
    """The ``columns`` of the rows of ``table`` whose column is among its values for any of
    ``wanted``, as tuples of Python values (each through its type's result processor, as a
    query through SQLAlchemy gives them). On SQLite and PostgreSQL one statement compiled once
    and run through the driver with one parameter a list (see :func:`among`), whatever the
    number of values: building, caching and running a Core ``select`` and its ``Row`` objects
    cost more than the query at a few thousand rows a batch. Elsewhere a Core ``select``."""
    wanted = [(column, values) for column, values in wanted if values]
    if not wanted:
        return []
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        conditions = [table.c[column].in_(values) for column, values in wanted]
        stmt = select(*(table.c[c] for c in columns)).where(or_(*conditions))
        return [tuple(row) for row in await connection.execute(stmt)]
    key = (dialect.name, table.name, tuple(columns), tuple(c for c, _ in wanted))
    plan = _SELECTS.get(key)
    if plan is None:
        plan = _SELECTS[key] = _compile_select(dialect, table, columns, key[3])
    params = tuple(plan.lists[i](list(wanted[i][1])) for i in plan.order)
    rows = (await connection.exec_driver_sql(plan.sql, params)).all()
    if not rows or not any(plan.results):
        return [tuple(row) for row in rows]
    # Column by column through the processors (map and zip), as execute_many binds.
    values = [
        list(map(processor, column)) if processor else column
        for processor, column in zip(plan.results, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*values, strict=True))


def _compile_select(
    dialect: Dialect, table: Table, columns: Sequence[str], among_columns: Sequence[str]
) -> _Select:
    lists: list[Callable[[list[Any]], Any]] = []
    conditions: list[ColumnElement[bool]] = []
    for i, name in enumerate(among_columns):
        column = table.c[name]
        checked = _column_processor(column.type, dialect)
        if dialect.name == "postgresql":
            conditions.append(column == any_(bindparam(f"l{i}", type_=ARRAY(column.type))))
            lists.append(checked or _as_is)
        else:
            conditions.append(_in_json_list(column, bindparam(f"l{i}", type_=Text())))
            lists.append(_json_list(checked))
    stmt = select(*(table.c[c] for c in columns)).where(or_(*conditions))
    compiled: Any = stmt.compile(dialect=dialect)
    order = tuple(int(name[1:]) for name in compiled.positiontup or compiled.binds)
    results = tuple(table.c[c].type._cached_result_processor(dialect, None) for c in columns)
    return _Select(str(compiled), order, tuple(lists), results)


def _as_is(values: list[Any]) -> list[Any]:
    return values


def _json_list(checked: _Column | None) -> Callable[[list[Any]], str]:
    def bind(values: list[Any]) -> str:
        return json.dumps(checked(values) if checked else values)

    return bind


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
    rows are new and need no count; on PostgreSQL one statement (see :func:`insert_many`)."""
    if not rows:
        return
    name = _dialect(session)
    if name in ("mysql", "mariadb"):
        await _insert_each(session, table, rows)
        return
    if name == "postgresql" and len(rows) > 1:
        await _insert_unnest(session, table, rows, " ON CONFLICT DO NOTHING")
        return
    module: Any = postgresql if name == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing()
    await execute_many(session, ("insert_ignore", table.name, tuple(rows[0])), stmt, rows)


async def insert_many(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys: on PostgreSQL one ``INSERT ... SELECT FROM
    unnest(...)`` of one array a column (an executemany of INSERTs runs row by row on the
    server, each with its index updates, a third of a batch's time there), elsewhere an
    :func:`execute_many`."""
    if not rows:
        return
    if _dialect(session) == "postgresql" and len(rows) > 1:
        await _insert_unnest(session, table, rows, "")
        return
    await execute_many(session, ("insert", table.name, tuple(rows[0])), insert(table), rows)


async def _insert_unnest(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], tail: str
) -> None:
    connection = await session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    given = [table.c[name] for name in rows[0]]
    # Python-side defaults of the columns not given, evaluated once for the statement (as
    # execute_many does); server-side ones (autoincrement keys) the database fills in.
    defaulted = [
        c
        for c in table.columns
        if c.key not in rows[0] and c.default is not None and not c.default.is_sequence
    ]
    cast = [f"::{c.type.compile(dialect=dialect)}" for c in [*given, *defaulted]]
    arrays = ", ".join(f"${i + 1}{cast[i]}[]" for i in range(len(given)))
    picked = [f"v.c{i}" for i in range(len(given))]
    picked += [f"${len(given) + i + 1}{cast[len(given) + i]}" for i in range(len(defaulted))]
    # Only the table's own identifiers are formatted in (quoted); every value is bound.
    targets = ", ".join(quote(c.name) for c in [*given, *defaulted])
    aliases = ", ".join(f"c{i}" for i in range(len(given)))
    sql = (
        f"INSERT INTO {quote(table.name)} ({targets}) "  # noqa: S608
        f"SELECT {', '.join(picked)} FROM unnest({arrays}) AS v({aliases}){tail}"
    )
    arrays_of = [(column.key, column) for column in given]
    once = [(column, column.default) for column in defaulted]
    await connection.exec_driver_sql(sql, _unnest_params(dialect, arrays_of, once, rows))


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
    once = [(column, column.onupdate) for column in touched]
    await connection.exec_driver_sql(sql, _unnest_params(dialect, arrays, once, rows))


def _unnest_params(
    dialect: Dialect,
    arrays: Sequence[tuple[str, Any]],
    once: Sequence[tuple[Any, Any]],
    rows: Sequence[dict[str, Any]],
) -> tuple[Any, ...]:
    """The parameters of an unnest statement: one array a column (the rows' values under each
    name, through the column type's processing), then each Python-side default evaluated once."""
    params: list[Any] = []
    for name, column in arrays:
        processor = _column_processor(column.type, dialect)
        values = list(map(itemgetter(name), rows))
        params.append(processor(values) if processor else values)
    for column, default in once:
        value = default.arg(None) if default.is_callable else default.arg
        processor = column.type._cached_bind_processor(dialect)
        params.append(processor(value) if processor else value)
    return tuple(params)
