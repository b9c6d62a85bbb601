"""The local chain's own tests call solana-py's client ``client``; the chain, wallets and helpers
come from the shared harness (``tests.harness.localnet``)."""

from __future__ import annotations

import pytest
from solana.rpc.async_api import AsyncClient


@pytest.fixture(scope="session")
def client(solana_client: AsyncClient) -> AsyncClient:
    return solana_client
