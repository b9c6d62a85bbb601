"""``aiw3 localnet`` runs until SIGINT / SIGTERM, printing where it listens, and stops cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Processed
from solana.rpc.websocket_api import SolanaWsClient
from solders.rpc.responses import SlotNotification

_URLS = re.compile(r"rpc (http://\S+)\s+ws (ws://\S+)")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_localnet_command_serves_until_signalled(stop_signal: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from aiw3.cli import main; main()",
        "localnet",
        "--rpc-port",
        "0",
        "--ws-port",
        "0",
        "--slot-ms",
        "20",
        "--finality-depth",
        "4",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = _URLS.search(line)
        assert match, line
        rpc_url, ws_url = match.groups()
        assert rpc_url.startswith("http://127.0.0.1:")
        async with AsyncClient(rpc_url) as rpc:
            assert await rpc.is_connected()
            first = (await rpc.get_slot(Processed)).value
        async with SolanaWsClient(ws_url) as ws:
            await ws.slot_subscribe()
            note = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(note, SlotNotification)
            assert note.result.slot >= first
        proc.send_signal(stop_signal)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "localnet stopped at slot" in out.decode()
