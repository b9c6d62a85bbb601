"""Fixtures shared by every test package: databases on each backend, Redis, settings."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import structlog
from hypothesis import settings as hypothesis_settings
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from store import migrate
from store.engine import create_engine, session_factory
from store.tables import metadata
from tests.services import BACKENDS, REDIS_URL, fresh_database, unavailable

# The shared local-chain harness: its fixtures serve every test package.
pytest_plugins = ["tests.harness.localnet"]

# A loaded 2-core CI machine must not turn a slow example into a failure; in CI the examples
# are derived from the test itself, so a red run can be replayed exactly.
hypothesis_settings.register_profile("aiw3", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "aiw3")

# Rows the migrations themselves write; everything else is wiped between tests.
_SEEDED_TABLES = {"nft_tiers"}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands and configure_logging change process-wide logging; undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in logging.root.manager.loggerDict:
        logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))
    structlog.reset_defaults()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session")
async def migrated_engine(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """One migrated database per backend for the whole run."""
    async with fresh_database(backend, str(tmp_path_factory.mktemp(backend))) as url:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
            yield engine
        finally:
            await engine.dispose()


@pytest_asyncio.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The migrated database of the current backend, emptied after the test."""
    yield migrated_engine
    async with migrated_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name not in _SEEDED_TABLES:
                await conn.execute(delete(table))


@pytest_asyncio.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as s:
        yield s


@pytest_asyncio.fixture
async def redis_client() -> AsyncIterator[object]:
    """A Redis connection on a test database number, flushed after the test."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        unavailable("Redis", exc)
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
