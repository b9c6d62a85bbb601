"""Fixtures: the RPC client the indexer uses and one AIW3 deployment (system wallet +
collection) per session, on the shared harness's local chain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient

from chain.localnet import Localnet
from chain.rpc import RpcClient

from .chainops import Deployment, deploy
from .manual import HandDriven


@pytest_asyncio.fixture(scope="session")
async def rpc(localnet: Localnet) -> AsyncIterator[RpcClient]:
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as c:
        yield c


@pytest_asyncio.fixture(scope="session")
async def deployment(solana_client: AsyncClient) -> Deployment:
    return await deploy(solana_client)


@pytest.fixture(scope="session")
def client(solana_client: AsyncClient) -> AsyncClient:
    """solana-py's client on the harness's chain, under the name these tests use."""
    return solana_client


@pytest_asyncio.fixture
async def hand_driven(manual_localnet: Localnet) -> AsyncIterator[HandDriven]:
    """A fresh chain whose slots move by hand, with both RPC clients on it."""
    async with (
        AsyncClient(manual_localnet.rpc_url) as client,
        RpcClient([manual_localnet.rpc_url], metrics=CollectorRegistry()) as rpc,
    ):
        yield HandDriven(manual_localnet, client, rpc)
