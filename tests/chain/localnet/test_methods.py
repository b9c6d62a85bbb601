"""The local chain's HTTP JSON-RPC, driven by solana-py's AsyncClient as production code is."""

from __future__ import annotations

import base64

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts, TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from chain.localnet import CommitmentLevel, Localnet
from tests.harness.localnet import (
    T22,
    blockhash,
    burn_and_close_tx,
    mint_nft,
    mint_rent_size,
    raw_rpc,
    send,
    status_rank,
    transfer_nft_tx,
    wait_status,
)

SOL = 10**9
# Enough for a new 0-byte account to be rent exempt (890,880 lamports).
RENT_FREE = 1_000_000


def _transfer_tx(payer: Keypair, to: Pubkey, lamports: int, recent: Hash) -> Transaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), recent)


async def test_version_health_and_slot_ordering(client: AsyncClient, localnet: Localnet) -> None:
    assert (await client.get_version()).value.solana_core
    assert await client.is_connected()
    # One batch is answered atomically, so the three levels come from the same instant.
    levels = ["processed", "confirmed", "finalized"]
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": [{"commitment": level}]}
        for i, (method, level) in enumerate(
            [("getBlockHeight", level) for level in levels]
            + [("getSlot", level) for level in levels]
        )
    ]
    async with httpx.AsyncClient() as http:
        replies = (await http.post(localnet.rpc_url, json=batch)).json()
    heights = [r["result"] for r in replies[:3]]
    slots = [r["result"] for r in replies[3:]]
    depth = localnet.config.finality_depth
    assert heights[0] == heights[1] + 1
    assert heights[0] - heights[2] == min(depth, heights[0])  # genesis is final from the start
    assert slots[0] > slots[1] >= slots[2]
    latest = await client.get_latest_blockhash(Confirmed)
    block = localnet.chain.block_by_slot(latest.context.slot)
    assert block is not None
    assert latest.value.last_valid_block_height == block.height + 150
    assert str(latest.value.blockhash) == str(block.blockhash)


async def test_airdrop_lands_as_a_transaction(client: AsyncClient) -> None:
    wallet = Keypair()
    signature = (await client.request_airdrop(wallet.pubkey(), 3 * SOL)).value
    await wait_status(client, signature, "confirmed")
    assert (await client.get_balance(wallet.pubkey(), Confirmed)).value == 3 * SOL
    tx = (await client.get_transaction(signature, commitment=Confirmed)).value
    assert tx is not None
    meta = tx.transaction.meta
    assert meta is not None
    assert meta.err is None
    # Same amount twice in a row still gives two distinct, landed transactions.
    again = (await client.request_airdrop(wallet.pubkey(), 3 * SOL)).value
    assert again != signature
    await wait_status(client, again, "confirmed")
    assert (await client.get_balance(wallet.pubkey(), Confirmed)).value == 6 * SOL


@pytest.mark.parametrize("commitment", [Processed, Confirmed, Finalized])
async def test_send_and_confirm_at_each_commitment(
    client: AsyncClient, funded: Keypair, commitment: Commitment
) -> None:
    dest = Keypair().pubkey()
    tx = _transfer_tx(funded, dest, RENT_FREE + 12345, await blockhash(client))
    signature = (await client.send_raw_transaction(bytes(tx))).value
    assert signature == tx.signatures[0]
    await client.confirm_transaction(signature, commitment, sleep_seconds=0.01)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None
    assert status.err is None
    rank = {Processed: 0, Confirmed: 1, Finalized: 2}
    got = status_rank(status.confirmation_status)
    assert got >= rank[commitment]
    if got == 2:
        assert status.confirmations is None
    else:
        assert status.confirmations is not None
    balance = await client.get_balance(dest, commitment)
    assert balance.value == RENT_FREE + 12345


async def test_reads_at_older_commitments_see_older_state(
    client: AsyncClient, funded: Keypair
) -> None:
    dest = Keypair().pubkey()
    tx = _transfer_tx(funded, dest, RENT_FREE + 777, await blockhash(client))
    signature = (await client.send_raw_transaction(bytes(tx))).value
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None
    landed_slot = status.slot
    for commitment in (Processed, Confirmed, Finalized):
        reply = await client.get_balance(dest, commitment)
        # The reply's context says which block it reflects; the balance must agree with it.
        expected = RENT_FREE + 777 if reply.context.slot >= landed_slot else 0
        assert reply.value == expected, commitment
    await wait_status(client, signature, "finalized")
    assert (await client.get_balance(dest, Finalized)).value == RENT_FREE + 777


async def test_token2022_nft_mint_transfer_burn_close(client: AsyncClient, funded: Keypair) -> None:
    holder = Keypair()
    mint, minted = await mint_nft(client, funded, holder.pubkey(), level=2)
    rent = (await client.get_minimum_balance_for_rent_exemption(mint_rent_size())).value

    info = (await client.get_account_info(mint.pubkey(), Confirmed)).value
    assert info is not None
    assert info.owner == T22
    accounts = (
        await client.get_token_accounts_by_owner(
            holder.pubkey(), TokenAccountOpts(program_id=T22), Confirmed
        )
    ).value
    assert len(accounts) == 1
    holder_ata = accounts[0].pubkey
    assert bytes(accounts[0].account.data)[:32] == bytes(mint.pubkey())
    largest = (await client.get_token_largest_accounts(mint.pubkey(), Confirmed)).value
    assert [(a.address, a.amount.amount) for a in largest] == [(holder_ata, "1")]
    supply = (await client.get_token_supply(mint.pubkey(), Confirmed)).value
    assert supply.amount == "1"
    assert supply.decimals == 0

    detail = (await client.get_transaction(minted, commitment=Confirmed)).value
    assert detail is not None
    meta = detail.transaction.meta
    assert meta is not None
    assert meta.err is None
    assert meta.pre_token_balances == []
    post = meta.post_token_balances
    assert post is not None
    assert len(post) == 1
    assert post[0].mint == mint.pubkey()
    assert post[0].owner == holder.pubkey()
    assert post[0].ui_token_amount.amount == "1"
    assert meta.fee == 10_000  # two signatures
    assert meta.compute_units_consumed
    assert meta.compute_units_consumed > 0
    assert meta.log_messages
    assert any("MintTo" in line for line in meta.log_messages)
    assert meta.inner_instructions  # ATA creation invokes the system and token programs
    keys = detail.transaction.transaction.message.account_keys  # type: ignore[union-attr]
    payer_index = [str(k) for k in keys].index(str(funded.pubkey()))
    assert meta.pre_balances[payer_index] - meta.post_balances[payer_index] > rent

    # Holder pays for a transfer to a new wallet.
    await wait_status(
        client, (await client.request_airdrop(holder.pubkey(), SOL)).value, "confirmed"
    )
    receiver = Keypair().pubkey()
    moved = (
        await client.send_raw_transaction(
            bytes(transfer_nft_tx(holder, mint.pubkey(), receiver, await blockhash(client)))
        )
    ).value
    await wait_status(client, moved, "confirmed")
    assert (
        await client.get_token_accounts_by_owner(
            receiver, TokenAccountOpts(mint=mint.pubkey()), Confirmed
        )
    ).value
    meta = (await client.get_transaction(moved, commitment=Confirmed)).value.transaction.meta  # type: ignore[union-attr]
    assert meta is not None
    pre = {str(b.owner): b.ui_token_amount.amount for b in meta.pre_token_balances or []}
    post_amounts = {str(b.owner): b.ui_token_amount.amount for b in meta.post_token_balances or []}
    assert pre == {str(holder.pubkey()): "1"}
    assert post_amounts == {str(holder.pubkey()): "0", str(receiver): "1"}


async def test_burn_and_close_returns_rent_and_leaves_supply_zero(
    client: AsyncClient, funded: Keypair
) -> None:
    mint, _ = await mint_nft(client, funded, funded.pubkey())
    accounts = (
        await client.get_token_accounts_by_owner(
            funded.pubkey(), TokenAccountOpts(mint=mint.pubkey()), Confirmed
        )
    ).value
    assert len(accounts) == 1
    ata = accounts[0].pubkey
    ata_rent = accounts[0].account.lamports
    before = (await client.get_balance(funded.pubkey(), Confirmed)).value

    burned = (
        await client.send_raw_transaction(
            bytes(burn_and_close_tx(funded, mint.pubkey(), await blockhash(client)))
        )
    ).value
    await wait_status(client, burned, "confirmed")
    assert (await client.get_account_info(ata, Confirmed)).value is None
    assert (
        await client.get_token_accounts_by_owner(
            funded.pubkey(), TokenAccountOpts(program_id=T22), Confirmed
        )
    ).value == []
    assert (await client.get_token_supply(mint.pubkey(), Confirmed)).value.amount == "0"
    assert (await client.get_token_largest_accounts(mint.pubkey(), Confirmed)).value == []
    after = (await client.get_balance(funded.pubkey(), Confirmed)).value
    assert after == before + ata_rent - 5000
    meta = (await client.get_transaction(burned, commitment=Confirmed)).value.transaction.meta  # type: ignore[union-attr]
    assert meta is not None
    assert [b.ui_token_amount.amount for b in meta.pre_token_balances or []] == ["1"]
    assert meta.post_token_balances == []  # the account no longer exists


async def test_transfer_of_a_token_not_held_fails_preflight(
    client: AsyncClient, funded: Keypair
) -> None:
    receiver = Keypair()
    mint, _ = await mint_nft(client, funded, receiver.pubkey(), commitment="processed")
    # funded has no token account for this mint: the transfer's source does not exist.
    bad = transfer_nft_tx(funded, mint.pubkey(), Keypair().pubkey(), await blockhash(client))
    with pytest.raises(RPCException) as caught:
        await client.send_raw_transaction(bytes(bad))
    failure = caught.value.args[0]
    assert isinstance(failure, SendTransactionPreflightFailureMessage)
    assert failure.data.err is not None
    assert failure.data.logs


async def test_preflight_failure_and_skip_preflight(client: AsyncClient, funded: Keypair) -> None:
    dest = Keypair().pubkey()
    too_much = _transfer_tx(funded, dest, 1000 * SOL, await blockhash(client))
    with pytest.raises(RPCException) as caught:
        await client.send_raw_transaction(bytes(too_much))
    failure = caught.value.args[0]
    assert isinstance(failure, SendTransactionPreflightFailureMessage)
    assert "custom program error: 0x1" in failure.message
    assert failure.data.logs
    assert any("insufficient lamports" in x for x in failure.data.logs)
    assert (await client.get_signature_statuses([too_much.signatures[0]])).value[0] is None
    before = (await client.get_balance(funded.pubkey(), Processed)).value

    # Without preflight the failed transaction lands, charges its fee and is recorded as failed.
    landed = (await client.send_raw_transaction(bytes(too_much), TxOpts(skip_preflight=True))).value
    await wait_status(client, landed, "confirmed")
    status = (await client.get_signature_statuses([landed])).value[0]
    assert status is not None
    assert status.err is not None
    assert (await client.get_balance(funded.pubkey(), Confirmed)).value == before - 5000
    assert (await client.get_balance(dest, Confirmed)).value == 0
    meta = (await client.get_transaction(landed, commitment=Confirmed)).value.transaction.meta  # type: ignore[union-attr]
    assert meta is not None
    assert meta.err is not None
    assert meta.fee == 5000
    listed = (
        await client.get_signatures_for_address(funded.pubkey(), limit=1, commitment=Confirmed)
    ).value
    assert listed[0].signature == landed
    assert listed[0].err is not None


async def test_preflight_error_shape_on_the_wire(localnet: Localnet, funded: Keypair) -> None:
    async with AsyncClient(localnet.rpc_url) as rpc:
        recent = await blockhash(rpc)
    tx = _transfer_tx(funded, Keypair().pubkey(), 1000 * SOL, recent)
    body = await raw_rpc(
        localnet.rpc_url,
        "sendTransaction",
        [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64", "skipPreflight": None}],
    )
    assert body["id"] == 7
    error = body["error"]
    assert error["code"] == -32002
    assert error["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert error["data"]["unitsConsumed"] > 0


async def test_unknown_and_expired_blockhash(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        old = (await rpc.get_latest_blockhash(Processed)).value
        unknown = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE, Hash.new_unique())
        with pytest.raises(RPCException) as caught:
            await send(rpc, unknown)
        assert "Blockhash not found" in caught.value.args[0].message
        assert caught.value.args[0].data.err is not None

        for _ in range(150):
            chain.advance_slot()
        # 150 blocks later the blockhash is still valid: height == lastValidBlockHeight.
        assert (await rpc.get_block_height(Processed)).value == old.last_valid_block_height
        ok = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE + 1, old.blockhash)
        assert (await send(rpc, ok)).value == ok.signatures[0]
        valid = await raw_rpc(
            manual_localnet.rpc_url,
            "isBlockhashValid",
            [str(old.blockhash), {"commitment": "processed"}],
        )
        assert valid["result"]["value"] is True

        chain.advance_slot()
        late = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE + 2, old.blockhash)
        with pytest.raises(RPCException) as caught:
            await send(rpc, late)
        assert "Blockhash not found" in caught.value.args[0].message
        valid = await raw_rpc(
            manual_localnet.rpc_url,
            "isBlockhashValid",
            [str(old.blockhash), {"commitment": "processed"}],
        )
        assert valid["result"]["value"] is False
        # Without preflight the leader drops it: a signature comes back, nothing ever lands.
        dropped = (await rpc.send_raw_transaction(bytes(late), TxOpts(skip_preflight=True))).value
        chain.advance_slot()
        assert (await rpc.get_signature_statuses([dropped])).value == [None]


async def test_duplicate_send_executes_once(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        dest = Keypair().pubkey()
        tx = _transfer_tx(wallet, dest, RENT_FREE + 1000, chain.current.blockhash)
        first = (await send(rpc, tx)).value
        # LiteSVM alone would forget the signature after ~32 transactions: push it past that.
        filler = Keypair()
        await rpc.request_airdrop(filler.pubkey(), SOL)
        for i in range(40):
            chain.advance_slot()
            await send(
                rpc,
                _transfer_tx(filler, Keypair().pubkey(), RENT_FREE + i, chain.current.blockhash),
            )
        again = (await rpc.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))).value
        assert again == first
        with pytest.raises(RPCException) as caught:
            await send(rpc, tx)
        assert "already been processed" in caught.value.args[0].message
        chain.advance_slot()
        assert (await rpc.get_balance(dest, Processed)).value == RENT_FREE + 1000
        sigs = (await rpc.get_signatures_for_address(dest, commitment=Confirmed)).value
        assert [s.signature for s in sigs] == [first]


async def test_signature_pagination(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        target = Keypair().pubkey()
        sent = []
        for i in range(7):
            tx = _transfer_tx(wallet, target, RENT_FREE + i, chain.current.blockhash)
            sent.append((await send(rpc, tx)).value)
            if i % 3 == 0:
                chain.advance_slot()
        # The current block is only processed: nothing in it is listed at confirmed.
        listed = (await rpc.get_signatures_for_address(target, commitment=Confirmed)).value
        confirmed_count = len(listed)
        assert [s.signature for s in listed] == list(reversed(sent))[7 - confirmed_count :]
        chain.advance_slot()
        newest_first = list(reversed(sent))
        listed = (await rpc.get_signatures_for_address(target, commitment=Confirmed)).value
        assert [s.signature for s in listed] == newest_first
        assert all(s.confirmation_status is not None for s in listed)
        assert [s.slot for s in listed] == sorted((s.slot for s in listed), reverse=True)

        page1 = (await rpc.get_signatures_for_address(target, limit=3, commitment=Confirmed)).value
        page2 = (
            await rpc.get_signatures_for_address(
                target, before=page1[-1].signature, limit=3, commitment=Confirmed
            )
        ).value
        page3 = (
            await rpc.get_signatures_for_address(
                target, before=page2[-1].signature, limit=3, commitment=Confirmed
            )
        ).value
        assert [s.signature for s in page1 + page2 + page3] == newest_first
        assert len(page3) == 1
        # before and until are both exclusive.
        window = (
            await rpc.get_signatures_for_address(
                target, before=newest_first[1], until=newest_first[5], commitment=Confirmed
            )
        ).value
        assert [s.signature for s in window] == newest_first[2:5]
        assert (
            await rpc.get_signatures_for_address(
                target, until=newest_first[0], commitment=Confirmed
            )
        ).value == []
        assert (
            await rpc.get_signatures_for_address(
                target, before=newest_first[-1], commitment=Confirmed
            )
        ).value == []
        # Finalized lags: none of these is finalized yet.
        assert (await rpc.get_signatures_for_address(target, commitment=Finalized)).value == []
        for bad_limit in (0, 1001):
            with pytest.raises(RPCException):
                await rpc.get_signatures_for_address(target, limit=bad_limit)
        body = await raw_rpc(
            manual_localnet.rpc_url,
            "getSignaturesForAddress",
            [str(target), {"commitment": "processed"}],
        )
        assert body["error"]["code"] == -32602


async def test_get_transaction_rules(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        legacy = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE + 5, chain.current.blockhash)
        message = MessageV0.try_compile(
            wallet.pubkey(),
            [
                transfer(
                    TransferParams(
                        from_pubkey=wallet.pubkey(),
                        to_pubkey=Keypair().pubkey(),
                        lamports=RENT_FREE + 6,
                    )
                )
            ],
            [],
            chain.current.blockhash,
        )
        v0 = VersionedTransaction(message, [wallet])
        await send(rpc, legacy)
        await send(rpc, v0)
        # Still processed: getTransaction at confirmed does not see it, processed is refused.
        assert (await rpc.get_transaction(legacy.signatures[0], commitment=Confirmed)).value is None
        body = await raw_rpc(
            url, "getTransaction", [str(legacy.signatures[0]), {"commitment": "processed"}]
        )
        assert body["error"]["code"] == -32602
        chain.advance_slot()
        got = (await rpc.get_transaction(legacy.signatures[0], commitment=Confirmed)).value
        assert got is not None
        assert got.transaction.version is None
        got = (
            await rpc.get_transaction(
                legacy.signatures[0], commitment=Confirmed, max_supported_transaction_version=0
            )
        ).value
        assert got is not None
        assert got.transaction.version is not None
        body = await raw_rpc(
            url,
            "getTransaction",
            [
                str(legacy.signatures[0]),
                {"commitment": "confirmed", "maxSupportedTransactionVersion": 0},
            ],
        )
        assert body["result"]["version"] == "legacy"
        body = await raw_rpc(
            url, "getTransaction", [str(v0.signatures[0]), {"commitment": "confirmed"}]
        )
        assert body["error"]["code"] == -32015
        v0_got = (
            await rpc.get_transaction(
                v0.signatures[0], "base64", Confirmed, max_supported_transaction_version=0
            )
        ).value
        assert v0_got is not None
        assert bytes(v0_got.transaction.transaction) == bytes(v0)
        # Finalized only after the finality depth.
        assert (await rpc.get_transaction(legacy.signatures[0], commitment=Finalized)).value is None
        for _ in range(chain.config.finality_depth):
            chain.advance_slot()
        assert (await rpc.get_transaction(legacy.signatures[0])).value is not None
        parsed = await raw_rpc(
            url,
            "getTransaction",
            [
                str(legacy.signatures[0]),
                {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0},
            ],
        )
        ix = parsed["result"]["transaction"]["message"]["instructions"][0]
        assert ix["parsed"]["type"] == "transfer"
        assert ix["parsed"]["info"]["lamports"] == RENT_FREE + 5


async def test_account_queries_and_limits(
    client: AsyncClient, localnet: Localnet, funded: Keypair
) -> None:
    url = localnet.rpc_url
    owner = Keypair().pubkey()
    mint, _ = await mint_nft(client, funded, owner)

    many = (
        await client.get_multiple_accounts(
            [funded.pubkey(), Keypair().pubkey(), mint.pubkey()], Confirmed
        )
    ).value
    assert many[0] is not None
    assert many[1] is None
    assert many[2] is not None
    body = await raw_rpc(url, "getMultipleAccounts", [[str(Keypair().pubkey())] * 101])
    assert body["error"]["code"] == -32602
    # Default encoding is base58 ("binary"), refused above 128 bytes.
    body = await raw_rpc(url, "getAccountInfo", [str(mint.pubkey()), {"commitment": "confirmed"}])
    assert body["error"]["code"] == -32600
    body = await raw_rpc(
        url,
        "getAccountInfo",
        [str(funded.pubkey()), {"commitment": "confirmed", "encoding": None, "dataSlice": None}],
    )
    assert body["result"]["value"]["data"] == ""
    assert body["result"]["context"]["apiVersion"]
    parsed = await raw_rpc(
        url,
        "getAccountInfo",
        [str(mint.pubkey()), {"commitment": "confirmed", "encoding": "jsonParsed"}],
    )
    assert parsed["result"]["value"]["data"]["parsed"]["type"] == "mint"
    assert parsed["result"]["value"]["data"]["parsed"]["info"]["supply"] == "1"

    # getProgramAccounts with filters, through the owner index.
    found = (
        await client.get_program_accounts(
            T22,
            Confirmed,
            "base64",
            filters=[
                MemcmpOpts(offset=0, bytes=str(mint.pubkey())),
                MemcmpOpts(offset=32, bytes=str(owner)),
            ],
        )
    ).value
    assert len(found) == 1
    assert bytes(found[0].account.data)[32:64] == bytes(owner)
    by_size = await raw_rpc(
        url,
        "getProgramAccounts",
        [
            str(T22),
            {
                "commitment": "confirmed",
                "encoding": "base64",
                "withContext": True,
                "filters": [
                    {"dataSize": 170},
                    {
                        "memcmp": {
                            "offset": 0,
                            "bytes": base64.b64encode(bytes(mint.pubkey())).decode(),
                            "encoding": "base64",
                        }
                    },
                ],
            },
        ],
    )
    assert [a["pubkey"] for a in by_size["result"]["value"]] == [str(found[0].pubkey)]


async def test_simulate_unsigned_and_replace_blockhash(
    client: AsyncClient, funded: Keypair
) -> None:
    dest = Keypair().pubkey()
    ix = transfer(
        TransferParams(from_pubkey=funded.pubkey(), to_pubkey=dest, lamports=RENT_FREE + 42)
    )
    unsigned = VersionedTransaction.populate(
        Message.new_with_blockhash([ix], funded.pubkey(), Hash.new_unique()),
        [Keypair().sign_message(b"x")],
    )
    stale = (await client.simulate_transaction(unsigned)).value
    assert stale.err is not None  # unknown blockhash
    replaced = (
        await client.simulate_transaction(
            unsigned, replace_recent_blockhash=True, accounts_addresses=[dest]
        )
    ).value
    assert replaced.err is None
    assert replaced.logs
    assert replaced.units_consumed
    assert replaced.replacement_blockhash is not None
    assert replaced.accounts is not None
    assert replaced.accounts[0] is not None
    assert replaced.accounts[0].lamports == RENT_FREE + 42
    # Simulation changes nothing.
    assert (await client.get_balance(dest, Processed)).value == 0


async def test_protocol_errors(localnet: Localnet) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(localnet.rpc_url, content=b"{not json")
        assert reply.json()["error"]["code"] == -32700
        reply = await http.post(
            localnet.rpc_url, json={"jsonrpc": "2.0", "id": 0, "method": "nope"}
        )
        assert reply.json() == {
            "jsonrpc": "2.0",
            "error": {"code": -32601, "message": "Method not found"},
            "id": 0,
        }
        reply = await http.post(
            localnet.rpc_url,
            json=[
                {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
                {"jsonrpc": "2.0", "id": 2, "method": "getBalance", "params": ["bad"]},
            ],
        )
        first, second = reply.json()
        assert first == {"jsonrpc": "2.0", "result": "ok", "id": 1}
        assert second["id"] == 2
        assert second["error"]["code"] == -32602
        reply = await http.get(localnet.rpc_url + "/health")
        assert reply.text == "ok"
    body = await raw_rpc(
        localnet.rpc_url, "getSlot", [{"commitment": "processed", "minContextSlot": 10**12}]
    )
    assert body["error"]["code"] == -32016
    assert "contextSlot" in body["error"]["data"]


async def test_preflight_runs_at_the_preflight_commitment(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:  # solana-py default: finalized
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        dest = Keypair().pubkey()
        tx = _transfer_tx(wallet, dest, RENT_FREE, chain.current.blockhash)
        # The newest blockhash is unknown to the finalized bank preflight simulates on.
        with pytest.raises(RPCException) as caught:
            await rpc.send_raw_transaction(bytes(tx))
        assert "Blockhash not found" in caught.value.args[0].message
        assert (await send(rpc, tx)).value == tx.signatures[0]
        # Signed with a blockhash the finalized bank knows: lands via a processed preflight...
        for _ in range(3):
            chain.advance_slot()
        older = chain.block_at(CommitmentLevel.FINALIZED).blockhash
        tx = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE, older)
        assert (await send(rpc, tx)).value == tx.signatures[0]
        # ...and a duplicate not yet visible at finalized passes that preflight and is dropped
        # by the leader: the same signature back, executed once.
        assert (await rpc.send_raw_transaction(bytes(tx))).value == tx.signatures[0]
        for _ in range(chain.config.finality_depth):
            chain.advance_slot()
        with pytest.raises(RPCException) as caught:
            await rpc.send_raw_transaction(bytes(tx))
        assert "already been processed" in caught.value.args[0].message
        assert (await rpc.get_balance(dest, Processed)).value == RENT_FREE
        spent = (await rpc.get_signatures_for_address(wallet.pubkey(), commitment=Confirmed)).value
        assert [s.signature for s in spent].count(tx.signatures[0]) == 1


async def test_preflight_at_the_expiry_edge_simulates_before_dropping(
    manual_localnet: Localnet,
) -> None:
    """Confirmed height at the blockhash's lastValidBlockHeight, processed one past it: the
    preflight bank (confirmed) still knows the blockhash, the leader no longer does. A failing
    transaction is refused with -32002 (not accepted with a signature and lost); a good one
    passes preflight and is dropped by the leader, as on a node."""
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url, commitment=Confirmed) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        latest = (await rpc.get_latest_blockhash(Confirmed)).value
        while chain.block_at(CommitmentLevel.CONFIRMED).height < latest.last_valid_block_height:
            chain.advance_slot()
        assert chain.current.height == latest.last_valid_block_height + 1
        opts = TxOpts(preflight_commitment=Confirmed)
        too_much = _transfer_tx(wallet, Keypair().pubkey(), 2 * SOL, latest.blockhash)
        with pytest.raises(RPCException) as caught:
            await rpc.send_raw_transaction(bytes(too_much), opts)
        reply = caught.value.args[0]
        assert isinstance(reply, SendTransactionPreflightFailureMessage)
        assert "custom program error: 0x1" in reply.message
        good = _transfer_tx(wallet, Keypair().pubkey(), RENT_FREE, latest.blockhash)
        assert (await rpc.send_raw_transaction(bytes(good), opts)).value == good.signatures[0]
        chain.advance_slot()
        chain.advance_slot()
        statuses = await rpc.get_signature_statuses([good.signatures[0], too_much.signatures[0]])
        assert statuses.value == [None, None]
