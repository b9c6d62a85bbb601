"""Fixtures: the local chain on free loopback ports, in-process, driven by solana-py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from chain.localnet import Localnet, LocalnetConfig

# Short slots and a shallow finality keep the suite fast; the protocol is the same.
SLOT_MS = 20
FINALITY_DEPTH = 6
# A clock that never ticks on its own: tests advance slots by hand for exact boundaries.
MANUAL_SLOT_MS = 3_600_000


@pytest_asyncio.fixture(scope="session")
async def localnet() -> AsyncIterator[Localnet]:
    """A running local chain (HTTP + WebSocket) with a 20 ms slot clock, shared by the session."""
    net = Localnet(
        LocalnetConfig(slot_ms=SLOT_MS, finality_depth=FINALITY_DEPTH), rpc_port=0, ws_port=0
    )
    await net.start()
    try:
        yield net
    finally:
        await net.stop()


@pytest_asyncio.fixture
async def manual_localnet() -> AsyncIterator[Localnet]:
    """A fresh local chain whose slots advance only when a test calls ``chain.advance_slot()``."""
    net = Localnet(
        LocalnetConfig(slot_ms=MANUAL_SLOT_MS, finality_depth=FINALITY_DEPTH),
        rpc_port=0,
        ws_port=0,
    )
    await net.start()
    try:
        yield net
    finally:
        await net.stop()


@pytest_asyncio.fixture(scope="session")
async def client(localnet: Localnet) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(localnet.rpc_url) as rpc:
        yield rpc


@pytest_asyncio.fixture
async def funded(client: AsyncClient) -> Keypair:
    """A new wallet holding 10 SOL, its airdrop confirmed."""
    wallet = Keypair()
    signature = (await client.request_airdrop(wallet.pubkey(), 10 * 10**9)).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)
    return wallet
