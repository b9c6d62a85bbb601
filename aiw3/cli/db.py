"""``aiw3 db``: schema migrations on the database of ``AIW3_DATABASE_URL``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from aiw3.cli._common import console, fail, settings_or_exit
from store import migrate
from store.engine import create_engine

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


def _run(step: Callable[[AsyncEngine], Awaitable[None]]) -> str | None:
    settings = settings_or_exit()

    async def go() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            await step(engine)
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except OSError as exc:
        fail(f"cannot reach the database: {exc}. Check AIW3_DATABASE_URL.", code="db_unreachable")


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database up (to the newest schema by default)."""
    now = _run(lambda engine: migrate.upgrade(engine, revision))
    console.print(f"database at revision [bold]{now}[/bold]")


@app.command()
def downgrade(
    revision: str = typer.Argument("-1", help="Target revision; 'base' removes every table."),
) -> None:
    """Migrate the database down (one step by default)."""
    now = _run(lambda engine: migrate.downgrade(engine, revision))
    console.print(f"database at revision [bold]{now or 'base (empty)'}[/bold]")


@app.command()
def current() -> None:
    """Print the revision the database is at and the newest one available."""

    async def nothing(_: AsyncEngine) -> None:
        return None

    now = _run(nothing)
    console.print(f"current: {now or 'base (empty)'}; head: {migrate.head_revision()}")
