"""The RPC client against the real local chain (LiteSVM behind the Solana JSON-RPC protocol):
every typed method, a definitive preflight failure, and failover from a dead endpoint."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import MINT_LEN, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
)
from spl.token.models import InitializeMint2Params, MintToParams

from chain.keys import Signer
from chain.localnet import Localnet, LocalnetConfig
from chain.rpc import PreflightFailure, RpcClient, RpcConfig, RpcEndpoint
from core.errors import DefinitiveChainError

SOL = 10**9
CONFIG = RpcConfig(
    request_timeout=2.0,
    max_attempts=4,
    backoff_base=0.01,
    backoff_max=0.05,
    breaker_failure_threshold=2,
    breaker_reset_after=30,
)


@pytest_asyncio.fixture(scope="module")
async def node() -> AsyncIterator[str]:
    net = Localnet(LocalnetConfig(slot_ms=20, finality_depth=6), rpc_port=0, ws_port=0)
    await net.start()
    try:
        yield net.rpc_url
    finally:
        await net.stop()


@pytest_asyncio.fixture
async def rpc(node: str) -> AsyncIterator[RpcClient]:
    async with RpcClient([node], metrics=CollectorRegistry(), config=CONFIG) as client:
        yield client


async def _confirmed(rpc: RpcClient, signature: Signature) -> None:
    for _ in range(500):
        status = (await rpc.get_signature_statuses([signature])).value[0]
        if status is not None and status.confirmation_status is not None:
            assert status.err is None
            if str(status.confirmation_status) != "TransactionConfirmationStatus.Processed":
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{signature} was not confirmed")


async def _send(rpc: RpcClient, payer: Signer, ixs: list[Instruction], *extra: Signer) -> Signature:
    blockhash: Hash = (await rpc.get_latest_blockhash()).value.blockhash
    message = MessageV0.try_compile(payer.pubkey, ixs, [], blockhash)
    signers = [payer.solders_keypair(), *(s.solders_keypair() for s in extra)]
    tx = VersionedTransaction(message, signers)
    signature = await rpc.send_raw_transaction(bytes(tx))
    assert signature == tx.signatures[0]
    await _confirmed(rpc, signature)
    return signature


async def _funded(rpc: RpcClient, lamports: int = 2 * SOL) -> Signer:
    wallet = Signer.generate()
    await _confirmed(rpc, await rpc.request_airdrop(wallet.pubkey, lamports))
    return wallet


async def test_reads_and_a_transfer_round_trip(rpc: RpcClient) -> None:
    assert await rpc.get_health() is True
    assert await rpc.get_slot() > 0
    assert await rpc.get_block_height() >= 0
    wallet = await _funded(rpc)
    assert (await rpc.get_balance(wallet.pubkey)).value == 2 * SOL

    to = Pubkey.new_unique()
    signature = await _send(
        rpc,
        wallet,
        [transfer(TransferParams(from_pubkey=wallet.pubkey, to_pubkey=to, lamports=SOL))],
    )
    assert (await rpc.get_balance(to)).value == SOL
    tx = await rpc.get_transaction(signature)
    assert tx is not None
    history = await rpc.get_signatures_for_address(wallet.pubkey, limit=10)
    assert signature in [entry.signature for entry in history]

    accounts = await rpc.get_multiple_accounts(
        [Pubkey.new_unique() for _ in range(120)] + [wallet.pubkey, to]
    )
    assert accounts.value[:120] == [None] * 120
    tail = accounts.value[120:]
    assert tail[0] is not None
    assert tail[1] is not None
    assert tail[1].lamports == SOL
    info = await rpc.get_account_info(to)
    assert info.value is not None
    assert info.value.lamports == SOL


async def test_token_reads(rpc: RpcClient) -> None:
    payer = await _funded(rpc)
    mint = Signer.generate()
    owner = Pubkey.new_unique()
    rent = await rpc.get_minimum_balance_for_rent_exemption(MINT_LEN)
    assert rent > 0
    ata = get_associated_token_address(owner, mint.pubkey)
    await _send(
        rpc,
        payer,
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer.pubkey,
                    to_pubkey=mint.pubkey,
                    lamports=rent,
                    space=MINT_LEN,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(
                InitializeMint2Params(
                    decimals=0,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey,
                    mint_authority=payer.pubkey,
                    freeze_authority=None,
                )
            ),
            create_associated_token_account(payer.pubkey, owner, mint.pubkey),
            mint_to(
                MintToParams(
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey,
                    dest=ata,
                    mint_authority=payer.pubkey,
                    amount=1,
                    signers=[],
                )
            ),
        ],
        mint,
    )
    owned = await rpc.get_token_accounts_by_owner(owner, mint=mint.pubkey)
    assert [a.pubkey for a in owned.value] == [ata]
    by_program = await rpc.get_token_accounts_by_owner(owner, program_id=TOKEN_PROGRAM_ID)
    assert [a.pubkey for a in by_program.value] == [ata]
    largest = await rpc.get_token_largest_accounts(mint.pubkey)
    assert [(a.address, a.amount.amount) for a in largest.value] == [(ata, "1")]
    program_accounts = await rpc.get_program_accounts(TOKEN_PROGRAM_ID, filters=[MINT_LEN])
    assert mint.pubkey in [a.pubkey for a in program_accounts]


async def test_a_failing_transaction_is_a_definitive_preflight_failure(rpc: RpcClient) -> None:
    wallet = await _funded(rpc, SOL)
    blockhash = (await rpc.get_latest_blockhash()).value.blockhash
    too_much = transfer(
        TransferParams(from_pubkey=wallet.pubkey, to_pubkey=Pubkey.new_unique(), lamports=5 * SOL)
    )
    tx = VersionedTransaction(
        MessageV0.try_compile(wallet.pubkey, [too_much], [], blockhash),
        [wallet.solders_keypair()],
    )
    simulation = await rpc.simulate(tx)
    assert simulation.value.err is not None
    with pytest.raises(PreflightFailure) as info:
        await rpc.send_raw_transaction(bytes(tx))
    assert isinstance(info.value, DefinitiveChainError)
    assert info.value.rpc_code == -32002
    assert info.value.logs  # the simulation's program logs came back


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_fails_over_from_a_dead_endpoint_to_the_local_chain(node: str) -> None:
    registry = CollectorRegistry()
    endpoints = [
        RpcEndpoint(url=f"http://127.0.0.1:{_dead_port()}", name="dead"),
        RpcEndpoint(url=node, name="local"),
    ]
    async with RpcClient(endpoints, metrics=registry, config=CONFIG) as rpc:
        for _ in range(3):
            assert await rpc.get_slot() > 0
        assert rpc.breaker_states()["dead"] == "open"

    def count(endpoint: str, status: str) -> float:
        labels = {"method": "getSlot", "endpoint": endpoint, "status": status}
        return registry.get_sample_value("solana_rpc_duration_seconds_count", labels) or 0.0

    assert count("dead", "error") == CONFIG.breaker_failure_threshold
    assert count("local", "ok") == 3


async def test_resending_a_landed_transaction_returns_its_signature(rpc: RpcClient) -> None:
    """A retry after a lost reply must not turn a landed transaction into a failure: the node
    answers the second copy with AlreadyProcessed, which means "it is in", not "it failed"."""
    wallet = await _funded(rpc, SOL)
    blockhash = (await rpc.get_latest_blockhash()).value.blockhash
    ix = transfer(
        TransferParams(from_pubkey=wallet.pubkey, to_pubkey=Pubkey.new_unique(), lamports=10**6)
    )
    tx = VersionedTransaction(
        MessageV0.try_compile(wallet.pubkey, [ix], [], blockhash), [wallet.solders_keypair()]
    )
    first = await rpc.send_raw_transaction(bytes(tx))
    await _confirmed(rpc, first)
    assert await rpc.send_raw_transaction(bytes(tx)) == first
    statuses = (await rpc.get_signature_statuses([first])).value
    assert statuses[0] is not None
    assert statuses[0].err is None
