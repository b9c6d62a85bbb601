"""Real services for the tests: per-run databases on PostgreSQL and MariaDB, and Redis.

Addresses come from ``AIW3_TEST_POSTGRES_URL``, ``AIW3_TEST_MYSQL_URL`` and
``AIW3_TEST_REDIS_URL`` (defaults: this machine's services). A service that cannot be reached
skips the tests that need it, with the reason, unless ``AIW3_TEST_REQUIRE_SERVICES=1`` (CI),
where it fails them instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from store.engine import create_engine

POSTGRES_URL = os.environ.get(
    "AIW3_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("AIW3_TEST_MYSQL_URL", "mysql+asyncmy://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("AIW3_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("AIW3_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false")

BACKENDS = ("sqlite", "postgres", "mysql")


def unavailable(service: str, error: BaseException) -> None:
    """Skip (or, when services are required, fail) because ``service`` cannot be reached."""
    reason = f"{service} not reachable: {type(error).__name__}: {error}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AIW3_TEST_REQUIRE_SERVICES is set)", pytrace=False)
    pytest.skip(reason)


def _unique_name() -> str:
    return f"aiw3_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def fresh_database(backend: str, tmp_dir: str) -> AsyncIterator[str]:
    """A new, empty database on ``backend``; yields its URL and drops it afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_dir}/{_unique_name()}.db"
        return
    admin_url = POSTGRES_URL if backend == "postgres" else MYSQL_URL
    name = _unique_name()
    admin = create_engine(admin_url)
    quote = '"' if backend == "postgres" else "`"
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    except Exception as exc:
        await admin.dispose()
        unavailable("PostgreSQL" if backend == "postgres" else "MariaDB/MySQL", exc)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if backend == "postgres":
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        await admin.dispose()
