"""A hand-driven local chain for the indexer's block-exact tests (positions, forks): slots move
only when the test says, or while :meth:`HandDriven.ticking` runs helpers that wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from solana.rpc.async_api import AsyncClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction

from chain.localnet import Localnet
from chain.rpc import RpcClient
from chain.standards import MintRequest, get_standard

from .chainops import Deployment


@dataclass
class HandDriven:
    net: Localnet
    client: AsyncClient
    rpc: RpcClient

    @contextlib.asynccontextmanager
    async def ticking(self) -> AsyncIterator[None]:
        """Advance a slot every 10 ms inside the block (for set-up with helpers that wait)."""
        stop = asyncio.Event()

        async def tick() -> None:
            while not stop.is_set():
                self.net.chain.advance_slot()
                await asyncio.sleep(0.01)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            stop.set()
            await task

    def advance(self, slots: int = 1) -> None:
        for _ in range(slots):
            self.net.chain.advance_slot()

    def mint_tx(
        self, d: Deployment, key: Keypair, owner: Keypair, recent: Hash | None = None
    ) -> Transaction:
        """A member of ``d``'s collection minted to ``owner``, signed on ``recent`` (default:
        the block being built)."""
        plan = get_standard("token2022").mint_plan(
            system=d.system.pubkey(),
            owner=owner.pubkey(),
            mint=key.pubkey(),
            request=MintRequest("1", "https://example.invalid/n.json", None),
            collection=d.collection,
        )
        return Transaction(
            [d.system, key],
            Message(list(plan.instructions), d.system.pubkey()),
            recent or self.net.chain.current.blockhash,
        )
