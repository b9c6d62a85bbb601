"""Fixtures: the local chain (the localnet tests' own fixtures), the RPC client the indexer
uses, and one AIW3 deployment (system wallet + collection) per session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient

from chain.localnet import Localnet
from chain.rpc import RpcClient
from tests.chain.localnet.conftest import client, localnet  # noqa: F401 (fixtures)

from .chainops import Deployment, deploy


@pytest_asyncio.fixture(scope="session")
async def rpc(localnet: Localnet) -> AsyncIterator[RpcClient]:  # noqa: F811
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as c:
        yield c


@pytest_asyncio.fixture(scope="session")
async def deployment(client: AsyncClient) -> Deployment:  # noqa: F811
    return await deploy(client)
