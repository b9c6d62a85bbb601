"""The shared local-chain harness (like DipDup's ``dipdup.test``): fixtures and helpers that
every part's tests use to run against the real local chain.

Registered for all of ``tests/`` by the root ``conftest.py`` (``pytest_plugins``). Fixtures:

- ``localnet``: one running chain for the session (HTTP + WebSocket on free loopback ports,
  20 ms slots, finality after 6 blocks); ``rpc_url`` / ``ws_url`` point at it;
- ``manual_localnet``: a fresh chain per test whose slots move only on
  ``net.chain.advance_slot()``, for exact commitment and expiry boundaries;
- ``solana_client``: solana-py's ``AsyncClient`` on ``localnet``; ``rpc_client``: the project's
  ``chain.rpc.RpcClient`` on it;
- ``system_wallet``: a *new* ``chain.keys.Signer`` per test holding 10 SOL (airdrop confirmed),
  so that the histories of different tests' creators never mix; ``funded``: the same as a bare
  solders ``Keypair`` for tests that build transactions with solana-py helpers.

Helpers: ``mint_nft`` mints a Token-2022 NFT over the RPC and waits for a commitment;
``mint_nft_tx`` / ``transfer_nft_tx`` / ``burn_and_close_tx`` build the transactions (a minimal
recipe from shared/notes/solana-facts.md, not the production builder in ``chain.standards``);
``raw_rpc`` sends one exact JSON-RPC call; ``wait_status`` polls a signature to a commitment.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.responses import SendTransactionResp
from solders.signature import Signature
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus
from spl.token.constants import TOKEN_2022_PROGRAM_ID
from spl.token.instructions import (
    burn_checked,
    close_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
    set_authority,
    transfer_checked,
)
from spl.token.models import (
    AuthorityType,
    BurnCheckedParams,
    CloseAccountParams,
    InitializeMint2Params,
    MintToParams,
    SetAuthorityParams,
    TransferCheckedParams,
)

from chain.keys import Signer
from chain.localnet import Localnet, LocalnetConfig
from chain.rpc import RpcClient

# Short slots and a shallow finality keep the suite fast; the protocol is the same.
SLOT_MS = 20
FINALITY_DEPTH = 6
# A clock that never ticks on its own: tests advance slots by hand for exact boundaries.
MANUAL_SLOT_MS = 3_600_000
# What a fresh wallet is given: plenty for hundreds of mints.
WALLET_LAMPORTS = 10 * 10**9


# --------------------------------------------------------------------------------- fixtures


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


@pytest.fixture(scope="session")
def rpc_url(localnet: Localnet) -> str:
    return localnet.rpc_url


@pytest.fixture(scope="session")
def ws_url(localnet: Localnet) -> str:
    return localnet.ws_url


@pytest_asyncio.fixture(scope="session")
async def solana_client(localnet: Localnet) -> AsyncIterator[AsyncClient]:
    """solana-py's client on the session chain (default commitment ``finalized``, as solana-py)."""
    async with AsyncClient(localnet.rpc_url) as client:
        yield client


@pytest_asyncio.fixture
async def rpc_client(localnet: Localnet) -> AsyncIterator[RpcClient]:
    """The project's RPC client on the session chain, with its own metrics registry."""
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as client:
        yield client


@pytest_asyncio.fixture
async def system_wallet(solana_client: AsyncClient) -> Signer:
    """A new system wallet for this test alone, holding 10 SOL (airdrop confirmed)."""
    signer = Signer.generate()
    await airdrop(solana_client, signer.pubkey)
    return signer


@pytest_asyncio.fixture
async def funded(solana_client: AsyncClient) -> Keypair:
    """A new wallet holding 10 SOL, its airdrop confirmed, as a bare solders ``Keypair``."""
    wallet = Keypair()
    await airdrop(solana_client, wallet.pubkey())
    return wallet


async def airdrop(client: AsyncClient, pubkey: Pubkey, lamports: int = WALLET_LAMPORTS) -> None:
    """Fund ``pubkey`` from the faucet and wait until the airdrop is confirmed."""
    signature = (await client.request_airdrop(pubkey, lamports)).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)


# ------------------------------------------------------------------------- NFT transactions

T22 = TOKEN_2022_PROGRAM_ID
# Base mint padded to 165 + account type byte + MetadataPointer TLV (2 + 2 + 64).
_MINT_SPACE = 165 + 1 + 4 + 64
# Room the metadata extension grows into later; funded up front (rent for the final size).
_METADATA_ROOM = 400


def _disc(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:8]


def _borsh_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


def mint_nft_instructions(
    payer: Pubkey, mint: Pubkey, owner: Pubkey, rent: int, *, name: str, uri: str, level: int
) -> list[Instruction]:
    """One NFT: mint with MetadataPointer + TokenMetadata (``level`` field), ATA, MintTo 1,
    mint authority removed. ``rent`` is the minimum balance for the mint's final size."""
    pointer = Instruction(
        T22,
        bytes([39, 0]) + bytes(payer) + bytes(mint),
        [AccountMeta(mint, is_signer=False, is_writable=True)],
    )
    metadata_init = Instruction(
        T22,
        _disc("spl_token_metadata_interface:initialize_account")
        + _borsh_string(name)
        + _borsh_string("AIW3")
        + _borsh_string(uri),
        [
            AccountMeta(mint, is_signer=False, is_writable=True),
            AccountMeta(payer, is_signer=False, is_writable=False),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(payer, is_signer=True, is_writable=False),
        ],
    )
    update_level = Instruction(
        T22,
        _disc("spl_token_metadata_interface:updating_field")
        + bytes([3])
        + _borsh_string("level")
        + _borsh_string(str(level)),
        [
            AccountMeta(mint, is_signer=False, is_writable=True),
            AccountMeta(payer, is_signer=True, is_writable=False),
        ],
    )
    ata = get_associated_token_address(owner, mint, T22)
    return [
        create_account(
            CreateAccountParams(
                from_pubkey=payer, to_pubkey=mint, lamports=rent, space=_MINT_SPACE, owner=T22
            )
        ),
        pointer,
        initialize_mint2(
            InitializeMint2Params(decimals=0, program_id=T22, mint=mint, mint_authority=payer)
        ),
        metadata_init,
        update_level,
        create_idempotent_associated_token_account(payer, owner, mint, T22),
        mint_to(MintToParams(program_id=T22, mint=mint, dest=ata, mint_authority=payer, amount=1)),
        set_authority(
            SetAuthorityParams(
                program_id=T22,
                account=mint,
                authority=AuthorityType.MINT_TOKENS,
                current_authority=payer,
                new_authority=None,
            )
        ),
    ]


def mint_rent_size() -> int:
    """Bytes to pass to getMinimumBalanceForRentExemption for ``rent`` above."""
    return _MINT_SPACE + _METADATA_ROOM


def mint_nft_tx(
    payer: Keypair, mint: Keypair, owner: Pubkey, rent: int, blockhash: Hash, *, level: int = 1
) -> Transaction:
    ixs = mint_nft_instructions(
        payer.pubkey(),
        mint.pubkey(),
        owner,
        rent,
        name=f"AIW3 Equity L{level}",
        uri="https://example.invalid/nft.json",
        level=level,
    )
    return Transaction([payer, mint], Message(ixs, payer.pubkey()), blockhash)


def transfer_nft_tx(owner: Keypair, mint: Pubkey, to_owner: Pubkey, blockhash: Hash) -> Transaction:
    source = get_associated_token_address(owner.pubkey(), mint, T22)
    dest = get_associated_token_address(to_owner, mint, T22)
    ixs = [
        create_idempotent_associated_token_account(owner.pubkey(), to_owner, mint, T22),
        transfer_checked(
            TransferCheckedParams(
                program_id=T22,
                source=source,
                mint=mint,
                dest=dest,
                owner=owner.pubkey(),
                amount=1,
                decimals=0,
            )
        ),
    ]
    return Transaction([owner], Message(ixs, owner.pubkey()), blockhash)


def burn_and_close_tx(owner: Keypair, mint: Pubkey, blockhash: Hash) -> Transaction:
    account = get_associated_token_address(owner.pubkey(), mint, T22)
    ixs = [
        burn_checked(
            BurnCheckedParams(
                program_id=T22,
                mint=mint,
                account=account,
                owner=owner.pubkey(),
                amount=1,
                decimals=0,
            )
        ),
        close_account(
            CloseAccountParams(
                program_id=T22, account=account, dest=owner.pubkey(), owner=owner.pubkey()
            )
        ),
    ]
    return Transaction([owner], Message(ixs, owner.pubkey()), blockhash)


# ------------------------------------------------------------------------------ RPC helpers

_WANTED = {"processed": 0, "confirmed": 1, "finalized": 2}


def status_rank(status: TransactionConfirmationStatus | None) -> int:
    """0 processed, 1 confirmed, 2 finalized (the solders enum is not hashable)."""
    for rank, level in enumerate(
        (
            TransactionConfirmationStatus.Processed,
            TransactionConfirmationStatus.Confirmed,
            TransactionConfirmationStatus.Finalized,
        )
    ):
        if status == level:
            return rank
    return -1


async def raw_rpc(url: str, method: str, params: Any = None) -> dict[str, Any]:
    """One JSON-RPC call with exactly these params (for error codes and exact shapes)."""
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params or []},
        )
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body


async def wait_status(
    client: AsyncClient, signature: Signature, commitment: str, attempts: int = 500
) -> None:
    """Poll getSignatureStatuses until ``signature`` reached ``commitment`` (bounded)."""
    for _ in range(attempts):
        status = (await client.get_signature_statuses([signature])).value[0]
        if status is not None and status_rank(status.confirmation_status) >= _WANTED[commitment]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{signature} did not reach {commitment}")


async def blockhash(client: AsyncClient) -> Hash:
    """A blockhash at the client's (solana-py default: finalized) commitment, matching the
    default preflight commitment as production code must."""
    return (await client.get_latest_blockhash()).value.blockhash


async def send(client: AsyncClient, tx: Transaction | VersionedTransaction) -> SendTransactionResp:
    """Send with preflight at ``processed``: for transactions signed with the newest blockhash
    (``chain.current.blockhash``) on a hand-driven chain."""
    return await client.send_raw_transaction(bytes(tx), TxOpts(preflight_commitment=Processed))


async def mint_nft(
    client: AsyncClient,
    payer: Keypair | Signer,
    holder: Pubkey,
    *,
    commitment: str = "confirmed",
    level: int = 1,
) -> tuple[Keypair, Signature]:
    """Mint a Token-2022 NFT to ``holder`` over the RPC and wait for ``commitment``."""
    mint = Keypair()
    keypair = payer.solders_keypair() if isinstance(payer, Signer) else payer
    rent = (await client.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
    tx = mint_nft_tx(keypair, mint, holder, rent, await blockhash(client), level=level)
    signature = (await client.send_raw_transaction(bytes(tx))).value
    await wait_status(client, signature, commitment)
    return mint, signature
