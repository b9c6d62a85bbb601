"""``aiw3 asset show MINT``: what the chain says about one NFT, as JSON."""

from __future__ import annotations

import asyncio
import json

import typer
from prometheus_client import CollectorRegistry
from solders.pubkey import Pubkey

from aiw3.cli._common import fail, settings_or_exit
from aiw3.logging import configure_logging
from chain.asset import Asset, fetch_asset
from chain.pubkeys import parse_pubkey
from chain.rpc import RpcClient, RpcEndpoint, Slotted, endpoints_from_urls
from core.errors import AIW3Error

app = typer.Typer(help="Read AIW3 NFTs (either standard) from the chain.", no_args_is_help=True)


@app.command()
def show(
    mint: str = typer.Argument(..., help="The NFT's mint address (base58)."),
    rpc: str | None = typer.Option(
        None,
        "--rpc",
        help="JSON-RPC URL to read from. Default: AIW3_RPC_URL, then AIW3_RPC_FALLBACK_URLS.",
    ),
) -> None:
    """Print what the chain says about one NFT (JSON, with the slot it reflects)."""
    try:
        key = parse_pubkey(mint, field="mint")
        if rpc is not None:
            # Logs (retries, failover) go to stderr so stdout stays one JSON document.
            configure_logging("WARNING")
            endpoints = [RpcEndpoint(url=rpc, name="cli")]
        else:
            settings = settings_or_exit()
            endpoints = endpoints_from_urls([settings.rpc_url, *settings.rpc_fallback_urls])
    except AIW3Error as exc:
        fail(exc.message, code=exc.code, exit_code=2)
    try:
        found = asyncio.run(_read(endpoints, key))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    typer.echo(json.dumps({"slot": found.slot, **found.value.to_dict()}, indent=2))


async def _read(endpoints: list[RpcEndpoint], mint: Pubkey) -> Slotted[Asset]:
    # A one-shot command: its own metrics registry, never exported.
    async with RpcClient(endpoints, metrics=CollectorRegistry()) as client:
        return await fetch_asset(client, mint)
