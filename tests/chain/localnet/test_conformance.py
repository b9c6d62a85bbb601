"""Point-by-point conformance with a real Solana node (shared/notes/solana-facts.md, agave rpc.rs):
exact wire shapes, defaults and limits, checked on a hand-driven chain through solana-py or a
raw JSON-RPC call."""

from __future__ import annotations

import base64
from typing import Any

from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from chain.localnet import Localnet
from chain.localnet.encoding import b58encode

from .nft import mint_nft_tx, mint_rent_size
from .util import raw_rpc, send

SOL = 10**9
RENT_FREE = 1_000_000
CLOCK_SYSVAR = "SysvarC1ock11111111111111111111111111111111"
# The largest transaction a node accepts (solana_packet::PACKET_DATA_SIZE).
PACKET_DATA_SIZE = 1232


def _transfer_tx(payer: Keypair, to: Pubkey, lamports: int, recent: Any) -> Transaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), recent)


async def _funded(net: Localnet, rpc: AsyncClient) -> Keypair:
    wallet = Keypair()
    await rpc.request_airdrop(wallet.pubkey(), 10 * SOL)
    net.chain.advance_slot()
    return wallet


async def test_get_multiple_accounts_defaults_to_base64(manual_localnet: Localnet) -> None:
    # agave: getMultipleAccounts encodes base64 by default (getAccountInfo: base58), so an
    # account above 128 bytes is served, not refused.
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        wallet = await _funded(manual_localnet, rpc)
        mint = Keypair()
        rent = (await rpc.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
        chain = manual_localnet.chain
        await send(
            rpc, mint_nft_tx(wallet, mint, Keypair().pubkey(), rent, chain.current.blockhash)
        )
    raw = bytes(chain.get_account(mint.pubkey()).data)  # type: ignore[union-attr]
    assert len(raw) > 128
    body = await raw_rpc(
        url,
        "getMultipleAccounts",
        [[str(mint.pubkey()), str(wallet.pubkey())], {"commitment": "processed"}],
    )
    big, small = body["result"]["value"]
    assert big["data"] == [base64.b64encode(raw).decode(), "base64"]
    assert small["data"] == ["", "base64"]
    # getAccountInfo's own default stays base58 and refuses the same account.
    body = await raw_rpc(url, "getAccountInfo", [str(mint.pubkey()), {"commitment": "processed"}])
    assert body["error"]["code"] == -32600


async def test_send_transaction_size_limits(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    chain = manual_localnet.chain
    async with AsyncClient(url) as rpc:
        wallet = await _funded(manual_localnet, rpc)
    tx = bytes(_transfer_tx(wallet, Keypair().pubkey(), RENT_FREE, chain.current.blockhash))

    async def submit(text: str, encoding: str, method: str = "sendTransaction") -> dict[str, Any]:
        return await raw_rpc(
            url, method, [text, {"encoding": encoding, "preflightCommitment": "processed"}]
        )

    # Encoded length above the limit: refused before decoding, whatever the content.
    reply = await submit("1" * 1684, "base58")
    assert reply["error"]["code"] == -32602
    assert "1684 bytes (max: encoded/raw 1683/1232)" in reply["error"]["message"]
    reply = await submit("A" * 1648, "base64")
    assert reply["error"]["code"] == -32602
    assert "1648 bytes (max: encoded/raw 1644/1232)" in reply["error"]["message"]
    # 1,644 base64 characters decode to 1,233 bytes: within the encoded limit, one byte over the
    # packet size (a node checks both).
    padded = tx + b"\0" * (PACKET_DATA_SIZE + 1 - len(tx))
    text = base64.b64encode(padded).decode()
    assert len(text) == 1644
    for method in ("sendTransaction", "simulateTransaction"):
        reply = await submit(text, "base64", method)
        assert reply["error"]["code"] == -32602, method
        assert "decoded" in reply["error"]["message"]
        assert "1233 bytes (max: 1232 bytes)" in reply["error"]["message"]
    # Exactly 1,232 bytes is accepted (a node ignores trailing bytes after the transaction).
    fits = tx + b"\0" * (PACKET_DATA_SIZE - len(tx))
    reply = await submit(b58encode(fits), "base58")
    assert reply["result"] == str(Transaction.from_bytes(tx).signatures[0])
    assert chain.status(Transaction.from_bytes(tx).signatures[0], search_history=True)
