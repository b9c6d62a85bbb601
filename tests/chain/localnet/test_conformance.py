"""Point-by-point conformance with a real Solana node (shared/notes/solana-facts.md, agave rpc.rs):
exact wire shapes, defaults and limits, checked on a hand-driven chain through solana-py or a
raw JSON-RPC call."""

from __future__ import annotations

import base64
import itertools
import struct
from typing import Any

from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from spl.token.instructions import get_associated_token_address

from chain.localnet import Localnet
from chain.localnet.encoding import b58encode
from tests.harness.localnet import T22, mint_nft_tx, mint_rent_size, raw_rpc, send, transfer_nft_tx

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


async def _nft_moved(net: Localnet, rpc: AsyncClient) -> tuple[Keypair, Keypair, Pubkey, Any]:
    """A minted NFT moved from one holder to another; both transactions confirmed.
    Returns (payer, mint, receiver, transfer signature)."""
    chain = net.chain
    wallet = await _funded(net, rpc)
    holder = Keypair()
    await rpc.request_airdrop(holder.pubkey(), SOL)
    mint = Keypair()
    rent = (await rpc.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
    await send(rpc, mint_nft_tx(wallet, mint, holder.pubkey(), rent, chain.current.blockhash))
    chain.advance_slot()
    receiver = Keypair().pubkey()
    moved = transfer_nft_tx(holder, mint.pubkey(), receiver, chain.current.blockhash)
    await send(rpc, moved)
    chain.advance_slot()
    return wallet, mint, receiver, moved.signatures[0]


async def test_context_wrappers_exactly_where_a_node_puts_them(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    chain = manual_localnet.chain
    async with AsyncClient(url) as rpc:
        wallet, mint, receiver, moved = await _nft_moved(manual_localnet, rpc)
    confirmed = {"commitment": "confirmed"}
    pending = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE, chain.current.blockhash)
    pending_b64 = base64.b64encode(bytes(pending)).decode()
    b64 = {"encoding": "base64", "commitment": "processed"}
    wrapped: list[tuple[str, list[Any]]] = [
        ("getLatestBlockhash", [confirmed]),
        ("getBalance", [str(wallet.pubkey()), confirmed]),
        ("getAccountInfo", [str(wallet.pubkey()), confirmed]),
        ("getMultipleAccounts", [[str(wallet.pubkey())], confirmed]),
        (
            "getProgramAccounts",
            [str(T22), {**confirmed, "withContext": True, "encoding": "base64"}],
        ),
        ("getTokenAccountsByOwner", [str(receiver), {"mint": str(mint.pubkey())}, b64]),
        ("getTokenLargestAccounts", [str(mint.pubkey()), confirmed]),
        ("getSignatureStatuses", [[str(moved)]]),
        ("simulateTransaction", [pending_b64, b64]),
        ("isBlockhashValid", [str(chain.current.blockhash), {"commitment": "processed"}]),
    ]
    for method, params in wrapped:
        result = (await raw_rpc(url, method, params))["result"]
        assert set(result) == {"context", "value"}, method
        assert set(result["context"]) == {"slot", "apiVersion"}, method
        assert isinstance(result["context"]["slot"], int), method
    bare: list[tuple[str, list[Any], type]] = [
        ("getTransaction", [str(moved), confirmed], dict),
        ("getSignaturesForAddress", [str(receiver), confirmed], list),
        ("getProgramAccounts", [str(T22), {**confirmed, "encoding": "base64"}], list),
        ("getSlot", [], int),
        ("getBlockHeight", [], int),
        ("getMinimumBalanceForRentExemption", [165], int),
        ("getHealth", [], str),
        ("getVersion", [], dict),
        ("sendTransaction", [pending_b64, {**b64, "preflightCommitment": "processed"}], str),
    ]
    for method, params, kind in bare:
        result = (await raw_rpc(url, method, params))["result"]
        assert isinstance(result, kind), method
        assert not (isinstance(result, dict) and "context" in result), method
    assert (await raw_rpc(url, "getHealth"))["result"] == "ok"
    version = (await raw_rpc(url, "getVersion"))["result"]
    assert set(version) == {"solana-core", "feature-set"}
    assert (await raw_rpc(url, "getTransaction", [str(moved), confirmed]))["result"]["slot"] > 0


async def test_transaction_meta_fields(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        _, mint, receiver, moved = await _nft_moved(manual_localnet, rpc)
    result = (await raw_rpc(url, "getTransaction", [str(moved), {"commitment": "confirmed"}]))[
        "result"
    ]
    # `version` only when maxSupportedTransactionVersion is given.
    assert set(result) == {"slot", "blockTime", "transaction", "meta"}
    meta = result["meta"]
    assert {
        "err",
        "status",
        "fee",
        "preBalances",
        "postBalances",
        "innerInstructions",
        "logMessages",
        "preTokenBalances",
        "postTokenBalances",
        "rewards",
        "loadedAddresses",
        "computeUnitsConsumed",
    } <= set(meta)
    assert meta["err"] is None
    assert meta["status"] == {"Ok": None}
    assert meta["fee"] == 5000
    keys = result["transaction"]["message"]["accountKeys"]
    assert len(meta["preBalances"]) == len(meta["postBalances"]) == len(keys)
    assert meta["rewards"] == []
    assert meta["loadedAddresses"] == {"writable": [], "readonly": []}
    assert isinstance(meta["computeUnitsConsumed"], int)
    assert meta["computeUnitsConsumed"] > 0
    assert isinstance(meta["innerInstructions"], list)
    assert meta["logMessages"][0].startswith("Program ")
    post = meta["postTokenBalances"]
    for balance in meta["preTokenBalances"] + post:
        assert set(balance) == {"accountIndex", "mint", "owner", "programId", "uiTokenAmount"}
        assert set(balance["uiTokenAmount"]) == {"amount", "decimals", "uiAmount", "uiAmountString"}
        assert balance["mint"] == str(mint.pubkey())
        assert balance["programId"] == str(T22)
    received = [b for b in post if b["owner"] == str(receiver)]
    assert len(received) == 1
    assert received[0]["uiTokenAmount"] == {
        "amount": "1",
        "decimals": 0,
        "uiAmount": 1.0,
        "uiAmountString": "1",
    }
    # accountIndex points at the token account in the message's keys.
    ata = get_associated_token_address(receiver, mint.pubkey(), T22)
    assert keys[received[0]["accountIndex"]] == str(ata)
    versioned = await raw_rpc(
        url,
        "getTransaction",
        [str(moved), {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}],
    )
    assert versioned["result"]["version"] == "legacy"


async def test_signatures_for_address_entry_fields(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        _, _, receiver, moved = await _nft_moved(manual_localnet, rpc)
        entries = (
            await raw_rpc(url, "getSignaturesForAddress", [str(receiver), {"commitment": None}])
        )["result"]
        assert entries == []  # default commitment: finalized, and nothing is finalized yet
        entries = (
            await raw_rpc(
                url, "getSignaturesForAddress", [str(receiver), {"commitment": "confirmed"}]
            )
        )["result"]
        assert len(entries) == 1
        entry = entries[0]
        assert set(entry) == {"signature", "slot", "err", "memo", "blockTime", "confirmationStatus"}
        assert entry["signature"] == str(moved)
        assert entry["err"] is None
        assert entry["memo"] is None
        assert entry["confirmationStatus"] == "confirmed"
        assert entry["blockTime"] == (await rpc.get_block_time(entry["slot"])).value
        body = await raw_rpc(url, "getSignaturesForAddress", [str(receiver), {"limit": 1001}])
        assert body["error"] == {"code": -32602, "message": "Invalid limit; max 1000"}
        body = await raw_rpc(url, "getSignaturesForAddress", [str(receiver), {"limit": 0}])
        assert body["error"]["code"] == -32602
        body = await raw_rpc(
            url,
            "getSignaturesForAddress",
            [str(receiver), {"limit": 1000, "commitment": "confirmed"}],
        )
        assert len(body["result"]) == 1


async def test_signature_status_lifecycle_and_history_search(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    chain = manual_localnet.chain
    depth = chain.config.finality_depth
    async with AsyncClient(url) as rpc:
        wallet = await _funded(manual_localnet, rpc)
        tx = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE, chain.current.blockhash)
        signature = (await send(rpc, tx)).value

        async def status(search: bool | None = None) -> Any:
            params: list[Any] = [[str(signature), str(Keypair().sign_message(b"?"))]]
            if search is not None:
                params.append({"searchTransactionHistory": search})
            value = (await raw_rpc(url, "getSignatureStatuses", params))["result"]["value"]
            assert value[1] is None  # unknown
            return value[0]

        landed = await status()
        assert landed == {
            "slot": chain.current.slot,
            "confirmations": 0,
            "err": None,
            "status": {"Ok": None},
            "confirmationStatus": "processed",
        }
        chain.advance_slot()
        assert (await status())["confirmations"] == 1
        assert (await status())["confirmationStatus"] == "confirmed"
        for _ in range(depth - 2):
            chain.advance_slot()
        assert (await status())["confirmations"] == depth - 1
        chain.advance_slot()
        rooted = await status()
        assert rooted["confirmationStatus"] == "finalized"
        assert rooted["confirmations"] is None  # null once rooted
        # Past the status cache only a history search finds it.
        for _ in range(chain.config.status_cache_blocks - depth):
            chain.advance_slot()
        assert (await status(False)) is not None
        chain.advance_slot()
        assert (await status()) is None
        assert (await status(False)) is None
        assert (await status(True)) == rooted
        too_many = [str(signature)] * 257
        body = await raw_rpc(url, "getSignatureStatuses", [too_many])
        assert body["error"]["code"] == -32602


async def test_bad_signature_is_refused_with_32003(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    chain = manual_localnet.chain
    async with AsyncClient(url) as rpc:
        wallet = await _funded(manual_localnet, rpc)
    dest = Keypair().pubkey()
    tx = _transfer_tx(wallet, dest, RENT_FREE, chain.current.blockhash)
    forged = Transaction.populate(tx.message, [Keypair().sign_message(bytes(tx.message))])
    text = base64.b64encode(bytes(forged)).decode()
    opts = {"encoding": "base64", "preflightCommitment": "processed"}
    body = await raw_rpc(url, "sendTransaction", [text, opts])
    assert body["error"]["code"] == -32003
    body = await raw_rpc(url, "simulateTransaction", [text, {**opts, "sigVerify": True}])
    assert body["error"]["code"] == -32003
    # Without sigVerify a simulation does not check signatures.
    body = await raw_rpc(url, "simulateTransaction", [text, {**opts, "commitment": "processed"}])
    assert body["result"]["value"]["err"] is None
    # Without preflight the node answers with the signature, and the leader drops it.
    body = await raw_rpc(url, "sendTransaction", [text, {**opts, "skipPreflight": True}])
    assert body["result"] == str(forged.signatures[0])
    chain.advance_slot()
    statuses = await raw_rpc(
        url,
        "getSignatureStatuses",
        [[str(forged.signatures[0])], {"searchTransactionHistory": True}],
    )
    assert statuses["result"]["value"] == [None]
    assert chain.get_account(dest) is None


async def test_slots_carry_blockhash_parent_height_and_clock(manual_localnet: Localnet) -> None:
    url = manual_localnet.rpc_url
    chain = manual_localnet.chain
    seen = []
    for _ in range(3):
        block = chain.current
        info = (
            await raw_rpc(
                url,
                "getAccountInfo",
                [CLOCK_SYSVAR, {"commitment": "processed", "encoding": "base64"}],
            )
        )["result"]["value"]
        slot, _, epoch, _, unix_timestamp = struct.unpack(
            "<QqQQq", base64.b64decode(info["data"][0])
        )
        assert slot == block.slot
        assert unix_timestamp == block.block_time
        assert epoch == 0
        latest = (await raw_rpc(url, "getLatestBlockhash", [{"commitment": "processed"}]))["result"]
        assert latest["context"]["slot"] == block.slot
        assert latest["value"]["blockhash"] == str(block.blockhash)
        assert latest["value"]["lastValidBlockHeight"] == block.height + 150
        seen.append(block)
        chain.advance_slot()
    for parent, child in itertools.pairwise(seen):
        assert child.parent_slot == parent.slot
        assert child.height == parent.height + 1
        assert child.blockhash != parent.blockhash
        assert child.block_time >= parent.block_time
        got = (await raw_rpc(url, "getBlock", [child.slot, {"commitment": "confirmed"}]))["result"]
        assert got["parentSlot"] == parent.slot
        assert got["previousBlockhash"] == str(parent.blockhash)
        assert got["blockHeight"] == child.height
