"""The deployment's collection: created once, idempotently and crash-safely.

Its mint keypair is derived from the mint secret and a fixed key (per standard and system
wallet), so every run, and a run after a crash between send and record, names the same
address. Before sending anything the chain is asked whether the account exists; a send that
collides with an earlier copy fails on chain (the account is in use) instead of creating a
second collection. The group's update authority is the system wallet and is never handed on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Final

import structlog
from solana.rpc.commitment import Confirmed, Finalized
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import TransactionConfirmationStatus
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.keys import Signer
from chain.rpc import RpcClient
from chain.rpc.errors import PreflightFailure
from chain.standards import AssetStandard, CollectionRequest
from core.errors import ChainError
from minting.keys import MintKeys
from store.repos import collections

DEFAULT_REQUEST: Final = CollectionRequest(
    name="AIW3 Equity NFT", uri="https://aiw3.io/collection.json", symbol="AIW3"
)
_POLL: Final = 0.2
_ATTEMPTS: Final = 5


def collection_key(standard: str, system: Pubkey) -> str:
    return f"collection:{standard}:{system}"


def collection_address(keys: MintKeys, standard: str, system: Pubkey) -> Pubkey:
    return keys.keypair(collection_key(standard, system)).pubkey()


async def ensure_collection(
    sessions: async_sessionmaker[AsyncSession],
    rpc: RpcClient,
    system: Signer,
    keys: MintKeys,
    standard: AssetStandard,
    request: CollectionRequest = DEFAULT_REQUEST,
) -> Pubkey:
    """The collection mint, created on chain and recorded as trusted if it was not yet."""
    key = collection_key(standard.name, system.pubkey)
    mint = keys.keypair(key)
    address = mint.pubkey()
    async with sessions() as session:
        if await collections.get(session, str(address)) is not None:
            return address
    for _ in range(_ATTEMPTS):
        if await _exists(rpc, address):
            break
        plan = standard.collection_plan(
            system=system.pubkey, collection_mint=address, request=request
        )
        latest = (await rpc.get_latest_blockhash(Confirmed)).value
        tx = plan.sign([system.solders_keypair(), mint], latest.blockhash)
        try:
            signature = await rpc.send_raw_transaction(bytes(tx), preflight_commitment=Confirmed)
        except PreflightFailure:
            # An earlier copy (before a crash) may be landing: the next look decides.
            await asyncio.sleep(_POLL)
            continue
        await _landed_or_expired(rpc, signature, latest.last_valid_block_height)
    else:
        raise ChainError(f"the collection {address} could not be created; run it again")
    async with sessions() as session, session.begin():
        await collections.record(
            session,
            mint=str(address),
            standard=standard.name,
            authority=str(system.pubkey),
            at=dt.datetime.now(dt.UTC),
        )
    structlog.stdlib.get_logger(__name__).info("collection.ready", mint=str(address))
    return address


async def _exists(rpc: RpcClient, address: Pubkey) -> bool:
    return (await rpc.get_account_info(address, commitment=Confirmed)).value is not None


async def _landed_or_expired(rpc: RpcClient, signature: Signature, last_valid: int) -> None:
    while True:
        status = (await rpc.get_signature_statuses([signature])).value[0]
        if status is not None and status.confirmation_status in (
            TransactionConfirmationStatus.Confirmed,
            TransactionConfirmationStatus.Finalized,
        ):
            return
        if await rpc.get_block_height(Finalized) > last_valid:
            return
        await asyncio.sleep(_POLL)
