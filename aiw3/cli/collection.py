"""``aiw3 collection ensure``: create the deployment's collection once; print its address."""

from __future__ import annotations

import asyncio

import typer

from aiw3.cli._common import fail, settings_or_exit
from aiw3.cli.mint import resources
from aiw3.settings import Settings
from core.errors import AIW3Error
from minting.collection import ensure_collection

app = typer.Typer(help="The deployment's NFT collection.", no_args_is_help=True)


@app.command()
def ensure() -> None:
    """Create the collection if it does not exist yet (safe to run again); print its mint."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> str:
        async with resources(settings) as res:
            mint = await ensure_collection(
                res.sessions, res.rpc, res.system, res.keys, res.standard
            )
            return str(mint)

    try:
        typer.echo(asyncio.run(work(settings)))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
