"""``aiw3 up``: everything on this machine with embedded defaults, until Ctrl-C.

Parts start in dependency order inside one ``AsyncExitStack`` and stop in reverse: database
schema, then the local chain (when the configured RPC address is on this machine). Later
parts (indexer, mint worker, API) join the same stack.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

from aiw3.cli._common import console, fail, settings_or_exit, wait_for_stop_signal
from aiw3.settings import Settings
from chain.localnet import Localnet, LocalnetConfig
from store import migrate
from store.engine import create_engine

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def _migrate(url: str) -> str | None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


def _local_chain(settings: Settings) -> Localnet | None:
    """A local chain listening where the settings point, or None for a remote RPC."""
    rpc, ws = urlsplit(settings.rpc_url), urlsplit(settings.ws_url)
    if rpc.hostname not in _LOOPBACK or ws.hostname not in _LOOPBACK:
        return None
    return Localnet(
        LocalnetConfig(),
        host=rpc.hostname or "127.0.0.1",
        rpc_port=rpc.port or 8899,
        ws_port=ws.port or 8900,
    )


async def _run(settings: Settings) -> None:
    revision = await _migrate(settings.database_url)
    console.print(f"database  {settings.database_url}  (schema {revision})", highlight=False)
    async with AsyncExitStack() as stack:
        chain = _local_chain(settings)
        if chain is not None:
            await stack.enter_async_context(chain)
            console.print(f"chain     rpc {chain.rpc_url}  ws {chain.ws_url}", highlight=False)
        else:
            console.print(f"chain     remote rpc {urlsplit(settings.rpc_url).hostname}")
        console.print("running; Ctrl-C to stop")
        await wait_for_stop_signal()
    console.print("stopped")


def up() -> None:
    """Migrate the database, start every part of the service and print where they listen."""
    settings = settings_or_exit()
    try:
        asyncio.run(_run(settings))
    except OSError as exc:
        fail(
            f"{exc}. Check AIW3_DATABASE_URL, or free the ports of AIW3_RPC_URL/AIW3_WS_URL.",
            code="start_failed",
        )
