"""Small helpers for the local chain tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Processed
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.responses import SendTransactionResp
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus

from .nft import mint_nft_tx, mint_rent_size

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
    payer: Keypair,
    holder: Pubkey,
    *,
    commitment: str = "confirmed",
    level: int = 1,
) -> tuple[Keypair, Signature]:
    """Mint a Token-2022 NFT to ``holder`` over the RPC and wait for ``commitment``."""
    mint = Keypair()
    rent = (await client.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
    tx = mint_nft_tx(payer, mint, holder, rent, await blockhash(client), level=level)
    signature = (await client.send_raw_transaction(bytes(tx))).value
    await wait_status(client, signature, commitment)
    return mint, signature
