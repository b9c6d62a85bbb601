"""The collection is created once, recorded as trusted, and found again after a crash."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.codecs import token2022
from chain.keys import Signer
from chain.localnet import Localnet
from chain.rpc import RpcClient
from chain.standards import get_standard
from minting.collection import collection_address, ensure_collection
from minting.keys import MintKeys
from store.engine import session_factory
from store.repos import collections


async def test_created_once_and_recorded(engine: AsyncEngine, localnet: Localnet) -> None:
    system = Signer.generate()
    keys = MintKeys({1: os.urandom(32)}, 1)
    standard = get_standard("token2022")
    sessions = session_factory(engine)
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        await rpc.request_airdrop(system.pubkey, 10**9)
        mint = await ensure_collection(sessions, rpc, system, keys, standard)
        assert mint == collection_address(keys, "token2022", system.pubkey)
        account = (await rpc.get_account_info(mint)).value
        assert account is not None
        groups = [
            e
            for e in token2022.decode_mint(bytes(account.data)).extensions
            if isinstance(e, token2022.TokenGroup)
        ]
        assert [g.update_authority for g in groups] == [system.pubkey]

        async with sessions() as session:
            rows = await collections.list_all(session)
        assert [(r.mint, r.standard, r.authority) for r in rows] == [
            (str(mint), "token2022", str(system.pubkey))
        ]
        # A crash after sending, before recording: the next run finds the account on chain.
        async with sessions() as session, session.begin():
            await session.delete(rows[0])
        signatures = len(await rpc.get_signatures_for_address(mint))
        assert await ensure_collection(sessions, rpc, system, keys, standard) == mint
        assert len(await rpc.get_signatures_for_address(mint)) == signatures
        async with sessions() as session:
            assert len(await collections.list_all(session)) == 1
