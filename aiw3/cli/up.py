"""``aiw3 up``: everything on this machine with embedded defaults, until Ctrl-C."""

from __future__ import annotations

import asyncio

from aiw3.cli._common import console, fail, settings_or_exit
from store import migrate
from store.engine import create_engine


async def _migrate(url: str) -> str | None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


def up() -> None:
    """Migrate the database, start every part of the service and print where they listen."""
    settings = settings_or_exit()
    try:
        revision = asyncio.run(_migrate(settings.database_url))
    except OSError as exc:
        fail(f"cannot reach the database: {exc}. Check AIW3_DATABASE_URL.", code="db_unreachable")
    console.print(f"database  {settings.database_url}  (schema {revision})")
