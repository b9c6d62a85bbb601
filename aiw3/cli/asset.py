"""``aiw3 asset show MINT``: what the chain says about one NFT, as JSON, and whether it is a
genuine AIW3 NFT for the trusted collections and creators."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry
from solders.pubkey import Pubkey

from aiw3.cli._common import err_console, fail, settings_or_exit
from aiw3.logging import configure_logging
from aiw3.settings import Settings, load_settings
from chain.asset import Asset, fetch_asset
from chain.keys import load_keypair
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
    collection: Annotated[
        list[str] | None,
        typer.Option(
            "--collection",
            help="A trusted Token-2022 collection mint (repeatable). "
            "Default: AIW3_COLLECTIONS, when neither --collection nor --creator is given.",
        ),
    ] = None,
    creator: Annotated[
        list[str] | None,
        typer.Option(
            "--creator",
            help="A trusted Metaplex creator (repeatable). "
            "Default: AIW3_CREATORS, else the system wallet, when neither option is given.",
        ),
    ] = None,
) -> None:
    """Print what the chain says about one NFT (JSON, with the slot it reflects) and whether it
    is genuine: ``genuine`` and the ``reasons`` why not (also summed up on stderr)."""
    try:
        key = parse_pubkey(mint, field="mint")
        collections = [str(parse_pubkey(c, field="collection")) for c in collection or ()]
        creators = [str(parse_pubkey(c, field="creator")) for c in creator or ()]
        if rpc is not None:
            # Logs (retries, failover) go to stderr so stdout stays one JSON document.
            configure_logging("WARNING")
            endpoints = [RpcEndpoint(url=rpc, name="cli")]
            settings = None
        else:
            settings = settings_or_exit()
            endpoints = endpoints_from_urls([settings.rpc_url, *settings.rpc_fallback_urls])
        if not collections and not creators:
            collections, creators = _trusted(settings or load_settings())
    except AIW3Error as exc:
        fail(exc.message, code=exc.code, exit_code=2)
    try:
        found = asyncio.run(_read(endpoints, key))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    verdict = found.value.verdict(collections=collections, creators=creators)
    typer.echo(
        json.dumps({"slot": found.slot, **found.value.to_dict(), **verdict.to_dict()}, indent=2)
    )
    if verdict.genuine:
        err_console.print(f"genuine: {verdict.proof}", highlight=False, markup=False)
    else:
        err_console.print("unverified:", highlight=False, markup=False)
        for reason in verdict.reasons:
            err_console.print(f"  - {reason}", highlight=False, markup=False)


def _trusted(settings: Settings) -> tuple[list[str], list[str]]:
    """The configured trust: ``AIW3_COLLECTIONS``, and ``AIW3_CREATORS`` or the system wallet."""
    wallet = None
    if settings.system_keypair is not None:
        signer = load_keypair(
            settings.system_keypair.get_secret_value(), source="the system keypair setting"
        )
        wallet = str(signer.pubkey)
    return list(settings.collections), settings.trusted_creators(wallet)


async def _read(endpoints: list[RpcEndpoint], mint: Pubkey) -> Slotted[Asset]:
    # A one-shot command: its own metrics registry, never exported.
    async with RpcClient(endpoints, metrics=CollectorRegistry()) as client:
        return await fetch_asset(client, mint)
