"""The store's error boundary: driver errors become ``core.errors`` before they leave SQLAlchemy.

One ``handle_error`` listener on every engine that :func:`store.engine.create_engine` builds sees
each failed statement, commit or connect, so no ``sqlalchemy.exc`` reaches a repository's caller,
whichever call failed (a repository's statement, the caller's ``flush`` or ``commit``):

- a unique or primary-key violation, or a foreign key that says no, is a
  :class:`~core.errors.StoreConflict` whose ``constraint`` is the name the naming convention of
  ``store.tables`` gives (a primary key is ``pk_<table>``), the same on every backend;
- a value the schema refuses (a CHECK constraint, NOT NULL, too long or malformed for its
  column) is an :class:`~core.errors.InputError`, as are the checks of ``store.types``;
- a lost connection, a deadlock, a lock wait timeout or a busy SQLite file is a
  :class:`~core.errors.RetryableStoreError`: the unit of work was rolled back, run it again;
- anything else the driver raises is a plain :class:`~core.errors.StoreError`.

SQL sent with ``exec_driver_sql`` keeps SQLAlchemy's errors (its dialects introspect that way
and catch them); the repositories never use it.

How the constraint is named, per backend:

- PostgreSQL: asyncpg's error carries ``constraint_name``; ``<table>_pkey`` becomes ``pk_<table>``.
- MySQL/MariaDB: the message names the key (``for key 'uq_...'``, MySQL 8 prefixes the table) or
  the foreign key (``CONSTRAINT `fk_...```); ``PRIMARY`` becomes ``pk_<table>`` of the statement.
- SQLite: the message names the columns (``UNIQUE constraint failed: t.a, t.b``), which are
  mapped back to the unique constraint, unique index or primary key of ``t`` in the metadata. A
  foreign key failure names nothing at all: the foreign keys of the statement's table whose
  columns it sets are the candidates, and when there are several, the one whose parent row is
  missing (looked up on the failing connection, inside its transaction) is the one.

Messages name the constraint and table, never the values (the driver's text may hold them).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, event, literal, select
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.schema import Column, ForeignKeyConstraint, MetaData, UniqueConstraint

from core.errors import (
    AIW3Error,
    InputError,
    RetryableStoreError,
    StoreConflict,
    StoreError,
)

# PostgreSQL SQLSTATEs (Appendix A of its manual).
_PG_CONFLICT = {"23505", "23503"}  # unique_violation, foreign_key_violation
_PG_REFUSED = {"23514", "23502", "22001", "22003", "22P02", "22007", "22008"}
_PG_RETRYABLE = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "57014"}

# MySQL/MariaDB error numbers.
_MY_DUPLICATE = 1062
_MY_FOREIGN_KEY = {1451, 1452, 1216, 1217}
_MY_REFUSED = {1048, 1406, 1264, 1265, 1292, 1366, 3819, 4025}
_MY_RETRYABLE = {1205, 1213, 1053, 1927, 2003, 2006, 2013, 2055, 4031}

_MY_KEY = re.compile(r"for key '(?:[^'.]*\.)?([^']+)'")
_MY_CONSTRAINT = re.compile(r"CONSTRAINT [`'\"]?([^`'\" ]+)")
_SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\S+)")
_BIND_SUFFIX = re.compile(r"_m?\d+$")


def install(engine: Engine, metadata: MetaData) -> None:
    """Translate every driver error of ``engine`` (the sync engine of an async one)."""

    def translate(context: ExceptionContext) -> BaseException | None:
        # The pool's pre-ping must see the driver's own error to reconnect quietly.
        if context.is_pre_ping:
            return None
        if not isinstance(context.original_exception, Exception):
            # A cancellation (CancelledError) mid-statement: SQLAlchemy takes it for a
            # disconnect, but it must stay a cancellation, or a cancelled task ends in an error.
            return None
        return _translate(context, metadata)

    event.listen(engine, "handle_error", translate)


def _translate(context: ExceptionContext, metadata: MetaData) -> BaseException | None:
    original = context.original_exception
    if isinstance(original, AIW3Error):
        # A check of ``store.types`` at bind time: SQLAlchemy would wrap it in a StatementError.
        # A copy, so the error is not raised "from" itself.
        return copy.copy(original)
    table = _statement_table(context, metadata)
    where = f" on {table.name}" if table is not None else ""
    if context.is_disconnect or isinstance(original, OSError):
        # OSError: the server could not be reached at all (refused, reset, timed out).
        return RetryableStoreError(f"the database connection was lost{where}; run the unit again")
    if _driver_sql(context):
        # ``exec_driver_sql``: SQLAlchemy's own introspection (``has_table`` on MySQL catches the
        # driver's "no such table"), never a repository's statement; leave its errors alone.
        return None
    backend = context.dialect.name
    if backend == "postgresql":
        found = _postgres(context, original, table)
    elif backend in ("mysql", "mariadb"):
        found = _mysql(context, original, table)
    else:
        found = _sqlite(context, original, table, metadata)
    if found is not None:
        return found
    # The driver's own words, cut short: they help whoever reads the log and hold no secrets
    # (parameters are bound, and signed transactions are public once sent).
    said = str(original)[:300]
    return StoreError(
        f"the database refused the statement{where}: {type(original).__name__}: {said}",
        details={"driver_error": type(original).__name__},
    )


def _conflict(constraint: str | None, table: Table | None) -> StoreConflict:
    subject = constraint or "a unique or foreign key"
    where = f" on {table.name}" if table is not None else ""
    return StoreConflict(f"the write clashes with {subject}{where}", constraint=constraint)


def _refused(constraint: str | None, table: Table | None) -> InputError:
    where = f" of {table.name}" if table is not None else ""
    rule = constraint or "a column's type or length"
    return InputError(
        f"a value does not fit {rule}{where}",
        code="value_refused",
        details={"constraint": constraint},
    )


def _retryable(reason: str, table: Table | None) -> RetryableStoreError:
    where = f" on {table.name}" if table is not None else ""
    return RetryableStoreError(f"{reason}{where}; the unit was rolled back, run it again")


# --- PostgreSQL (asyncpg) ----------------------------------------------------------------------


def _postgres(
    context: ExceptionContext, original: BaseException, table: Table | None
) -> AIW3Error | None:
    state = getattr(original, "sqlstate", None)
    # The adapter's error wraps asyncpg's, which carries the constraint's name.
    cause = original.__cause__ or original
    name = getattr(cause, "constraint_name", None)
    if state in _PG_CONFLICT:
        if name is not None and name.endswith("_pkey"):
            name = f"pk_{getattr(cause, 'table_name', None) or name.removesuffix('_pkey')}"
        return _conflict(name, table)
    if state in _PG_REFUSED:
        return _refused(name, table)
    if state in _PG_RETRYABLE or (state or "").startswith("08"):
        return _retryable(f"the database aborted the unit ({state})", table)
    return None


# --- MySQL / MariaDB (asyncmy) -----------------------------------------------------------------


def _mysql(
    context: ExceptionContext, original: BaseException, table: Table | None
) -> AIW3Error | None:
    args: tuple[Any, ...] = getattr(original, "args", ())
    number = args[0] if args and isinstance(args[0], int) else None
    message = str(args[1]) if len(args) > 1 else str(original)
    if number == _MY_DUPLICATE:
        match = _MY_KEY.search(message)
        key = match.group(1) if match else None
        if key == "PRIMARY":
            key = f"pk_{table.name}" if table is not None else None
        return _conflict(key, table)
    if number in _MY_FOREIGN_KEY:
        match = _MY_CONSTRAINT.search(message)
        return _conflict(match.group(1) if match else None, table)
    if number in _MY_REFUSED:
        match = _MY_CONSTRAINT.search(message) or re.search(r"constraint '([^']+)'", message)
        return _refused(match.group(1) if match else None, table)
    if number in _MY_RETRYABLE:
        return _retryable(f"the database aborted the unit (error {number})", table)
    return None


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite(
    context: ExceptionContext, original: BaseException, table: Table | None, metadata: MetaData
) -> AIW3Error | None:
    kind = getattr(original, "sqlite_errorname", "")
    message = str(original)
    if kind in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        match = _SQLITE_COLUMNS.search(message)
        return _conflict(_unique_by_columns(match.group(1), metadata) if match else None, table)
    if kind == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return _conflict(_sqlite_foreign_key(context, table, metadata), table)
    if kind == "SQLITE_CONSTRAINT_CHECK":
        match = _SQLITE_CHECK.search(message)
        return _refused(match.group(1) if match else None, table)
    if kind == "SQLITE_CONSTRAINT_NOTNULL":
        return _refused(None, table)
    if kind.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return _retryable("the database file is locked by another writer", table)
    return None


def _unique_by_columns(described: str, metadata: MetaData) -> str | None:
    """``"t.a, t.b"`` -> the name of the unique constraint, index or primary key on t(a, b)."""
    pairs = [part.strip().split(".", 1) for part in described.split(",")]
    if not pairs or any(len(pair) != 2 for pair in pairs):
        return None
    table = metadata.tables.get(pairs[0][0])
    if table is None:
        return None
    columns = {column for _table, column in pairs}
    if columns == {column.name for column in table.primary_key.columns}:
        return f"pk_{table.name}"
    for constraint in table.constraints:
        if not isinstance(constraint, UniqueConstraint):
            continue
        if {column.name for column in constraint.columns} == columns and constraint.name:
            return str(constraint.name)
    for index in table.indexes:
        if index.unique and {column.name for column in index.columns} == columns:
            return str(index.name) if index.name else None
    return None


def _sqlite_foreign_key(
    context: ExceptionContext, table: Table | None, metadata: MetaData
) -> str | None:
    """SQLite says only "FOREIGN KEY constraint failed": find which one from the statement."""
    statement = _statement(context)
    if table is None or statement is None:
        return None
    params = _parameters(context)
    if isinstance(statement, Delete):
        # A parent row still referenced: the candidates are the keys that point at this table.
        refs = [
            fk
            for other in metadata.tables.values()
            for fk in other.foreign_key_constraints
            if fk.referred_table is table
        ]
        missing = [fk for fk in refs if _children_exist(context, fk, params)]
        return _single_name(missing if missing else refs)
    candidates = [
        fk
        for fk in table.foreign_key_constraints
        if all(_value(params, column.key) is not None for column in fk.columns)
    ]
    if len(candidates) > 1:
        candidates = [fk for fk in candidates if not _parent_exists(context, fk, params)]
    return _single_name(candidates)


def _single_name(constraints: list[ForeignKeyConstraint]) -> str | None:
    return str(constraints[0].name) if len(constraints) == 1 and constraints[0].name else None


def _parent_exists(
    context: ExceptionContext, fk: ForeignKeyConstraint, params: list[Mapping[str, Any]]
) -> bool:
    element = fk.elements[0]
    return _row_exists(context, element.column, _value(params, element.parent.key))


def _children_exist(
    context: ExceptionContext, fk: ForeignKeyConstraint, params: list[Mapping[str, Any]]
) -> bool:
    element = fk.elements[0]
    return _row_exists(context, element.parent, _value(params, element.column.key))


def _row_exists(context: ExceptionContext, column: Column[Any], value: Any) -> bool:
    """One read on the failing connection, inside its transaction (it sees its own rows)."""
    if value is None or context.connection is None:
        return False
    query = select(literal(1)).select_from(column.table).where(column == value).limit(1)
    compiled = query.compile(dialect=context.dialect)
    bound = tuple(compiled.params[name] for name in compiled.positiontup or ())
    try:
        # The raw cursor: a statement through the Connection would re-enter its error handling.
        cursor = context.connection.connection.cursor()
        try:
            cursor.execute(str(compiled), bound)
            return cursor.fetchone() is not None
        finally:
            cursor.close()
    except Exception:  # naming the key is best effort; the conflict is raised all the same
        return False


# --- the failed statement ----------------------------------------------------------------------


def _driver_sql(context: ExceptionContext) -> bool:
    execution = context.execution_context
    return context.statement is not None and (
        execution is None or getattr(execution, "compiled", None) is None
    )


def _statement(context: ExceptionContext) -> Insert | Update | Delete | None:
    execution = context.execution_context
    compiled = getattr(execution, "compiled", None) if execution is not None else None
    statement = getattr(compiled, "statement", None)
    return statement if isinstance(statement, Insert | Update | Delete) else None


def _statement_table(context: ExceptionContext, metadata: MetaData) -> Table | None:
    # The metadata's own Table: an ORM statement carries an annotated copy of it.
    name = getattr(getattr(_statement(context), "table", None), "name", None)
    return metadata.tables.get(name) if isinstance(name, str) else None


def _parameters(context: ExceptionContext) -> list[Mapping[str, Any]]:
    execution = context.execution_context
    rows: Iterable[Mapping[str, Any]] = (
        getattr(execution, "compiled_parameters", None) or [] if execution is not None else []
    )
    return list(rows)


def _value(rows: list[Mapping[str, Any]], key: str) -> Any:
    """The value bound for column ``key`` (multi-row inserts name binds ``key_m0``...)."""
    for row in rows:
        for name, value in row.items():
            if value is not None and (name == key or _BIND_SUFFIX.sub("", name) == key):
                return value
    return None
