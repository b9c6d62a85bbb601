"""``aiw3 localnet``: the local Solana chain (LiteSVM behind JSON-RPC + PubSub) until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from aiw3.cli._common import console, fail
from chain.localnet import Localnet, LocalnetConfig


async def _serve(net: Localnet) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await net.start()
        console.print(f"localnet  rpc {net.rpc_url}  ws {net.ws_url}", highlight=False)
        console.print(
            f"          slot {net.config.slot_ms} ms, finality depth {net.config.finality_depth}"
            " blocks; Ctrl-C to stop",
            highlight=False,
        )
        await stop.wait()
    finally:
        await net.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return net.chain.current.slot


def localnet(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    rpc_port: Annotated[int, typer.Option(help="HTTP JSON-RPC port (0: any free port).")] = 8899,
    ws_port: Annotated[int, typer.Option(help="WebSocket PubSub port (0: any free port).")] = 8900,
    slot_ms: Annotated[int, typer.Option(min=1, help="Milliseconds per slot.")] = 400,
    finality_depth: Annotated[
        int, typer.Option(min=1, help="Blocks on top of a block before it is finalized.")
    ] = 31,
) -> None:
    """Run a local Solana chain (LiteSVM) speaking the real JSON-RPC and PubSub protocols."""
    net = Localnet(
        LocalnetConfig(slot_ms=slot_ms, finality_depth=finality_depth),
        host=host,
        rpc_port=rpc_port,
        ws_port=ws_port,
    )
    try:
        slot = asyncio.run(_serve(net))
    except OSError as exc:
        fail(f"cannot listen on {host}: {exc}. Pick other ports.", code="port_unavailable")
    console.print(f"localnet stopped at slot {slot}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="localnet")(localnet)
