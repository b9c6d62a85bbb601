"""Async engine and session factories for SQLite, PostgreSQL and MySQL/MariaDB.

One engine per process, built from the database URL in the settings, opened in the caller's
``lifespan`` and disposed there. Each dialect gets the options that make it behave like the
others: foreign keys and WAL on SQLite, READ COMMITTED, utf8mb4 and strict mode on MySQL. Every
engine translates its driver errors into ``core.errors`` (see ``store.errors``).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.errors import RetryableStoreError
from store import errors
from store.tables import metadata

_OPERATIONS = ("select", "insert", "update", "delete")


def create_engine(
    url: str | URL, *, echo: bool = False, query_duration: Histogram | None = None
) -> AsyncEngine:
    """Build the async engine for ``url`` with the per-dialect settings the service relies on."""
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        # One file, many tasks: wait for the writer instead of failing with "database is locked".
        options["connect_args"] = {"timeout": 30}
    elif backend == "postgresql":
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    elif backend == "mysql":
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        # REPEATABLE READ (MySQL's default) makes SKIP LOCKED work-queues see stale snapshots.
        options.update(pool_pre_ping=True, pool_recycle=1800, isolation_level="READ COMMITTED")
    engine = create_async_engine(parsed, **options)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif backend == "mysql":
        event.listen(engine.sync_engine, "connect", _mysql_strict)
    errors.install(engine.sync_engine, metadata)
    event.listen(engine.sync_engine, "do_connect", _connect)
    if query_duration is not None:
        _observe_queries(engine, query_duration)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (no lazy reload on an async session)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    # asyncpg raises a bare OSError for a refused connection, which SQLAlchemy passes through.
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as exc:
        raise RetryableStoreError(
            f"cannot reach the database ({type(exc).__name__}); try again"
        ) from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _mysql_strict(dbapi_connection: Any, _record: Any) -> None:
    # A server configured without strict mode would truncate an over-long value with a warning.
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES')")
    cursor.close()


def _observe_queries(engine: AsyncEngine, histogram: Histogram) -> None:
    # ``histogram`` has one label, the statement's verb (select/insert/update/delete/other).

    def before(
        conn: Any, _cursor: Any, _stmt: str, _params: Any, context: Any, _many: bool
    ) -> None:
        context._aiw3_started = time.perf_counter()

    def after(
        conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        started = getattr(context, "_aiw3_started", None)
        if started is None:
            return
        verb = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else "other"
        histogram.labels(verb if verb in _OPERATIONS else "other").observe(
            time.perf_counter() - started
        )

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
