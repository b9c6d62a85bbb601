"""Activation on the local chain: a generated user keypair signs as a wallet would."""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chain.codecs import memo
from chain.keys import Signer
from chain.programs import MEMO_V1_PROGRAM, TOKEN_2022_PROGRAM
from chain.rpc import RpcClient
from chain.standards import get_standard
from core.types import StandardName
from indexer.decode import decode_transaction
from indexer.projection import Projection, Trust
from minting.activation import Activations, activation_instructions
from minting.cache import LocalLocks
from minting.claims import Claims
from minting.errors import ActivationInvalid, ActivationNotFound, NftAlreadyActive, NftNotFound
from minting.ipfs.local import LocalPinner
from minting.keys import MintKeys
from minting.worker import MintWorker
from store.engine import session_factory
from store.tables import EventOutbox, MintOperation, UserNft
from tests.harness.localnet import airdrop, wait_status
from tests.harness.localnet import blockhash as finalized_blockhash
from tests.minting.conftest import make_user

STANDARD = get_standard("token2022")


def uri_for(level: int) -> str:
    return f"ipfs://bafy-level-{level}"


@dataclass
class Minted:
    """A user whose wallet is a generated keypair, holding a confirmed level-1 NFT."""

    sessions: async_sessionmaker[AsyncSession]
    keys: MintKeys
    user_id: int
    wallet: Keypair
    mint: str


async def minted_user(
    engine: AsyncEngine,
    rpc: RpcClient,
    client: AsyncClient,
    system: Signer,
    *,
    volume: str = "100000",
    badges: int = 0,
) -> Minted:
    """Claim and mint a level-1 NFT into a new funded wallet, through the real pipeline."""
    sessions = session_factory(engine)
    # A fresh secret per test: the session's chain keeps the mints of earlier tests.
    keys = MintKeys({1: os.urandom(32)}, 1)
    wallet = Keypair()
    await airdrop(client, wallet.pubkey(), 10**9)  # the owner pays the activation fee
    async with sessions() as session:
        user = await make_user(session, volume, badges, wallet=str(wallet.pubkey()))
    claims = Claims(sessions, keys, standard=StandardName.TOKEN2022, locks=LocalLocks())
    op = (await claims.claim(user.wallet_address)).operation
    pinner = LocalPinner(Path(tempfile.mkdtemp(prefix="aiw3-ipfs-")))
    worker = MintWorker(sessions, rpc, system, keys, STANDARD, pinner=pinner, poll=0.02)
    await worker.run_once(within=30)
    async with sessions() as session:
        nft = (await session.execute(select(UserNft))).scalar_one()
    assert (nft.mint_address, nft.status) == (op.mint_address, "unlocked")
    return Minted(sessions, keys, user.id, wallet, op.mint_address)


async def _send(client: AsyncClient, tx: Transaction) -> Signature:
    signature = (await client.send_raw_transaction(bytes(tx))).value
    await wait_status(client, signature, "confirmed")
    return signature


async def _status_and_events(m: Minted) -> tuple[str, list[str]]:
    async with m.sessions() as session:
        nft = (await session.execute(select(UserNft))).scalar_one()
        events = (
            (await session.execute(select(EventOutbox.event_type).order_by(EventOutbox.id)))
            .scalars()
            .all()
        )
    return nft.status, list(events)


async def test_owner_activates_through_the_wallet(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    m = await minted_user(engine, rpc_client, solana_client, system_wallet)
    activations = Activations(m.sessions, rpc_client)
    ticket = await activations.prepare(str(m.wallet.pubkey()), m.mint)

    # The wallet: decode, check it is asked to sign alone, sign, send.
    tx = Transaction.from_bytes(base64.b64decode(ticket.transaction))
    assert tx.message.account_keys[0] == m.wallet.pubkey()
    assert tx.message.header.num_required_signatures == 1
    tx.sign([m.wallet], tx.message.recent_blockhash)
    signature = await _send(solana_client, tx)

    # The mint's own history lists the activation (the indexer follows that history).
    history = await rpc_client.get_signatures_for_address(
        Pubkey.from_string(m.mint), commitment=Confirmed
    )
    assert signature in [h.signature for h in history]

    outcome = await activations.confirm_activation(str(signature))
    assert (outcome.status, outcome.moved) == ("active", True)
    again = await activations.confirm_activation(str(signature))
    assert (again.status, again.moved) == ("active", False)
    assert await _status_and_events(m) == ("active", ["unlocked", "activated"])
    with pytest.raises(NftAlreadyActive):
        await activations.prepare(str(m.wallet.pubkey()), m.mint)


async def test_forged_activations_change_nothing(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    m = await minted_user(engine, rpc_client, solana_client, system_wallet)
    activations = Activations(m.sessions, rpc_client)
    mint = Pubkey.from_string(m.mint)
    owner = m.wallet.pubkey()
    forger = Keypair()
    await airdrop(solana_client, forger.pubkey(), 10**9)
    blockhash = await finalized_blockhash(solana_client)

    # 1. The same memo and reference, signed by another wallet: it lands, and means nothing.
    signed_by_other = Transaction(
        [forger],
        Message(
            activation_instructions(forger.pubkey(), mint, TOKEN_2022_PROGRAM), forger.pubkey()
        ),
        blockhash,
    )
    # 2. Memo v1 names the owner as an account: v1 never checks that it signed.
    v1 = Instruction(
        MEMO_V1_PROGRAM,
        f"{memo.ACTIVATE_PREFIX}{mint}".encode(),
        [AccountMeta(owner, is_signer=False, is_writable=False)],
    )
    reference = activation_instructions(forger.pubkey(), mint, TOKEN_2022_PROGRAM)[1]
    v1_naming_owner = Transaction([forger], Message([v1, reference], forger.pubkey()), blockhash)
    for forged in (signed_by_other, v1_naming_owner):
        signature = await _send(solana_client, forged)
        with pytest.raises(ActivationInvalid):
            await activations.confirm_activation(str(signature))
    assert await _status_and_events(m) == ("unlocked", ["unlocked"])

    # The forger cannot even be handed an activation of an NFT it does not hold.
    with pytest.raises(NftNotFound):
        await activations.prepare(str(forger.pubkey()), m.mint)
    with pytest.raises(ActivationNotFound):
        await activations.confirm_activation(str(Signature.new_unique()))


async def test_owner_memo_without_the_mint_reference_is_not_an_activation(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    """The mint's history would never show it, so the indexer could never agree."""
    m = await minted_user(engine, rpc_client, solana_client, system_wallet)
    owner = m.wallet.pubkey()
    blockhash = await finalized_blockhash(solana_client)
    memo_only = Transaction(
        [m.wallet], Message([memo.activation(owner, Pubkey.from_string(m.mint))], owner), blockhash
    )
    signature = await _send(solana_client, memo_only)
    with pytest.raises(ActivationInvalid):
        await Activations(m.sessions, rpc_client).confirm_activation(str(signature))
    assert await _status_and_events(m) == ("unlocked", ["unlocked"])


async def index(m: Minted, rpc: RpcClient, signatures: list[str]) -> None:
    """The indexer's projection applies these transactions, as the chain listener would."""
    projection = Projection(Trust())
    for signature in signatures:
        found = await rpc.get_transaction(Signature.from_string(signature), commitment=Confirmed)
        assert found is not None
        async with m.sessions() as session, session.begin():
            await projection.apply(session, decode_transaction(found, 0))


@pytest.mark.parametrize("first", ["indexer", "direct"])
async def test_one_activated_event_whoever_sees_the_activation_first(
    first: str,
    engine: AsyncEngine,
    rpc_client: RpcClient,
    solana_client: AsyncClient,
    system_wallet: Signer,
) -> None:
    """The chain listener and the direct check (the client posts the signature) both see it:
    the NFT is ``active`` with one ``activated`` event, in either order."""
    m = await minted_user(engine, rpc_client, solana_client, system_wallet)
    activations = Activations(m.sessions, rpc_client)
    ticket = await activations.prepare(None, m.mint)  # for whoever holds it on chain
    assert ticket.owner == str(m.wallet.pubkey())
    tx = Transaction.from_bytes(base64.b64decode(ticket.transaction))
    tx.sign([m.wallet], tx.message.recent_blockhash)
    signature = await _send(solana_client, tx)
    async with m.sessions() as session:
        claim = (await session.execute(select(MintOperation))).scalar_one()
    assert claim.signature is not None
    history = [claim.signature, str(signature)]

    if first == "indexer":
        await index(m, rpc_client, history)
        assert (await _status_and_events(m))[0] == "active"
        outcome = await activations.confirm_activation(str(signature))
        assert (outcome.status, outcome.moved) == ("active", False)
    else:
        outcome = await activations.confirm_activation(str(signature))
        assert (outcome.status, outcome.moved) == ("active", True)
        await index(m, rpc_client, history)
    await index(m, rpc_client, history)  # delivered again
    assert await _status_and_events(m) == ("active", ["unlocked", "activated"])
    async with m.sessions() as session:
        event = (
            await session.execute(select(EventOutbox).where(EventOutbox.event_type == "activated"))
        ).scalar_one()
    assert (event.payload["mint"], event.payload["signature"]) == (m.mint, str(signature))
