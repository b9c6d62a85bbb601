"""Test-only methods: loading real accounts (localnet_setAccount) and forks (localnet_dropSlots)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import TokenAccountOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.responses import SlotNotification
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from chain.localnet import CommitmentLevel, Localnet, LocalnetConfig
from tests.das_fixtures import das_case
from tests.harness.localnet import (
    T22,
    burn_and_close_tx,
    mint_nft_tx,
    mint_rent_size,
    raw_rpc,
    send,
)

SPL_TOKEN = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
SOL = 10**9
AMOUNT = 1_000_000


def _fixture_accounts(case: str) -> list[dict[str, Any]]:
    data = das_case(case)
    return [a for step in data["steps"] for a in step["accounts"]]


def _transfer(payer: Keypair, to: Pubkey, lamports: int, recent: Hash) -> Transaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), recent)


async def _set_account(url: str, pubkey: str, spec: dict[str, Any]) -> dict[str, Any]:
    return await raw_rpc(url, "localnet_setAccount", [pubkey, spec])


async def test_set_account_loads_real_mainnet_accounts(localnet: Localnet) -> None:
    accounts = _fixture_accounts("reg_get_asset")
    for account in accounts:
        reply = await _set_account(
            localnet.rpc_url,
            account["pubkey"],
            {
                "lamports": account["lamports"],
                "owner": account["owner"],
                "data": [account["data_base64"], "base64"],
                "executable": account["executable"],
                "rentEpoch": None,
            },
        )
        assert "error" not in reply, reply
    token_account = next(a for a in accounts if a["role"] == "token_account")
    raw = base64.b64decode(token_account["data_base64"])
    owner = Pubkey.from_bytes(raw[32:64])
    mint = Pubkey.from_bytes(raw[0:32])
    async with AsyncClient(localnet.rpc_url) as rpc:
        for account in accounts:
            info = (
                await rpc.get_account_info(Pubkey.from_string(account["pubkey"]), Processed)
            ).value
            assert info is not None
            assert bytes(info.data) == base64.b64decode(account["data_base64"])
            assert str(info.owner) == account["owner"]
            assert info.lamports == account["lamports"]
        # Indexed for the token queries like any account written by a transaction.
        held = (
            await rpc.get_token_accounts_by_owner(
                owner, TokenAccountOpts(program_id=SPL_TOKEN), Processed
            )
        ).value
        assert [str(a.pubkey) for a in held] == [token_account["pubkey"]]
        largest = (await rpc.get_token_largest_accounts(mint, Processed)).value
        assert [str(a.address) for a in largest] == [token_account["pubkey"]]
        metadata = next(a for a in accounts if a["role"] == "metadata")
        found = (
            await rpc.get_program_accounts(
                Pubkey.from_string(metadata["owner"]), Processed, "base64"
            )
        ).value
        assert metadata["pubkey"] in {str(a.pubkey) for a in found}


async def test_set_account_with_zero_lamports_deletes(localnet: Localnet) -> None:
    key = str(Keypair().pubkey())
    await _set_account(localnet.rpc_url, key, {"lamports": 5000, "data": ["AQID", "base64"]})
    async with AsyncClient(localnet.rpc_url) as rpc:
        info = (await rpc.get_account_info(Pubkey.from_string(key), Processed)).value
        assert info is not None
        assert bytes(info.data) == b"\x01\x02\x03"
        await _set_account(localnet.rpc_url, key, {"lamports": 0})
        assert (await rpc.get_account_info(Pubkey.from_string(key), Processed)).value is None
    bad = await _set_account(localnet.rpc_url, key, {"lamports": 1, "data": ["!!", "base64"]})
    assert bad["error"]["code"] == -32602


async def test_drop_slots_reverts_to_the_fork_point(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        wallet, holder = Keypair(), Keypair()
        await rpc.request_airdrop(wallet.pubkey(), 5 * SOL)
        await rpc.request_airdrop(holder.pubkey(), SOL)
        chain.advance_slot()
        # An NFT that exists before the fork, burned on the abandoned branch.
        rent = (await rpc.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
        kept_mint = Keypair()
        await send(
            rpc, mint_nft_tx(wallet, kept_mint, holder.pubkey(), rent, chain.current.blockhash)
        )
        chain.advance_slot()
        fork_point = chain.block_at(CommitmentLevel.CONFIRMED)  # holds the kept mint
        fork = chain.current  # first block of the branch that will be abandoned
        assert (await rpc.get_slot(Processed)).value == fork.slot
        fork_height = (await rpc.get_block_height(Processed)).value
        wallet_before = (await rpc.get_balance(wallet.pubkey(), Processed)).value
        holder_before = (await rpc.get_balance(holder.pubkey(), Processed)).value

        # The abandoned branch: a transfer, a new NFT, a burn + close; three blocks.
        dest = Keypair().pubkey()
        pre_fork_hash = fork_point.blockhash
        moved = _transfer(wallet, dest, AMOUNT, pre_fork_hash)
        await send(rpc, moved)
        chain.advance_slot()
        new_mint = Keypair()
        await send(rpc, mint_nft_tx(wallet, new_mint, dest, rent, chain.current.blockhash))
        branch_hash = chain.current.blockhash
        chain.advance_slot()
        burned = burn_and_close_tx(holder, kept_mint.pubkey(), chain.current.blockhash)
        await send(rpc, burned)
        chain.advance_slot()
        assert (await rpc.get_balance(dest, Confirmed)).value == AMOUNT
        assert (
            await rpc.get_token_accounts_by_owner(
                holder.pubkey(), TokenAccountOpts(program_id=T22), Confirmed
            )
        ).value == []

        dropped_slots = [fork.slot, *(b.slot for b in chain.blocks_after(fork.slot))]
        reply = await raw_rpc(url, "localnet_dropSlots", [len(dropped_slots)])
        result = reply["result"]
        assert result["droppedSlots"] == dropped_slots
        assert result["forkSlot"] == fork_point.slot
        new_slot = result["slot"]
        assert new_slot > dropped_slots[-1]  # slot numbers never go back; heights do
        assert (await rpc.get_slot(Processed)).value == new_slot
        assert (await rpc.get_block_height(Processed)).value == fork_height

        # Every transaction of the branch vanished.
        for tx in (moved, burned):
            assert (await rpc.get_signature_statuses([tx.signatures[0]], True)).value == [None]
        assert (await rpc.get_signatures_for_address(dest, commitment=Confirmed)).value == []
        # State is back at the fork point, indexes included.
        assert (await rpc.get_balance(dest, Processed)).value == 0
        assert (await rpc.get_account_info(new_mint.pubkey(), Processed)).value is None
        assert (await rpc.get_balance(wallet.pubkey(), Processed)).value == wallet_before
        assert (await rpc.get_balance(holder.pubkey(), Processed)).value == holder_before
        held = (
            await rpc.get_token_accounts_by_owner(
                holder.pubkey(), TokenAccountOpts(program_id=T22), Processed
            )
        ).value
        assert len(held) == 1
        assert (
            await rpc.get_token_accounts_by_owner(dest, TokenAccountOpts(program_id=T22), Processed)
        ).value == []
        # Blockhashes of dropped blocks are gone; older ones are still valid, so the same
        # signed transfer can land again on the new branch (its signature is unknown there).
        valid = await raw_rpc(
            url, "isBlockhashValid", [str(branch_hash), {"commitment": "processed"}]
        )
        assert valid["result"]["value"] is False
        with pytest.raises(RPCException):
            await send(rpc, _transfer(wallet, dest, AMOUNT + 1, branch_hash))
        again = (await send(rpc, moved)).value
        assert again == moved.signatures[0]
        chain.advance_slot()
        status = (await rpc.get_signature_statuses([again])).value[0]
        assert status is not None
        assert status.slot == new_slot
        listed = (await rpc.get_signatures_for_address(dest, commitment=Confirmed)).value
        assert [s.signature for s in listed] == [again]
        assert (await rpc.get_balance(dest, Confirmed)).value == AMOUNT


async def test_finalized_slots_cannot_be_dropped(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    url = manual_localnet.rpc_url
    depth = chain.config.finality_depth
    for _ in range(depth + 3):
        chain.advance_slot()
    for bad in (0, -1, depth + 1):
        reply = await raw_rpc(url, "localnet_dropSlots", [bad])
        assert reply["error"]["code"] == -32602, bad
    finalized = chain.block_at(CommitmentLevel.FINALIZED)
    reply = await raw_rpc(url, "localnet_dropSlots", [depth])
    assert reply["result"]["forkSlot"] == finalized.slot


async def test_drop_on_a_running_clock_with_subscribers() -> None:
    # Its own chain: the 20 ms clock keeps running, and a 100-block finality window (2 s) leaves
    # room for a loaded machine between the send and the drop, so the drop never comes too late.
    config = LocalnetConfig(slot_ms=20, finality_depth=100)
    async with (
        Localnet(config, rpc_port=0, ws_port=0) as localnet,
        AsyncClient(localnet.rpc_url) as client,
    ):
        funded = Keypair()
        airdrop = (await client.request_airdrop(funded.pubkey(), 10**9)).value
        await client.confirm_transaction(airdrop, Confirmed, sleep_seconds=0.02)
        for _ in range(400):  # enough blocks to drop 50 of them
            if (await client.get_slot(Processed)).value >= 60:
                break
            await asyncio.sleep(0.05)
        dest = Keypair().pubkey()
        recent = (await client.get_latest_blockhash()).value.blockhash
        tx = _transfer(funded, dest, AMOUNT, recent)
        async with SolanaWsClient(localnet.ws_url) as ws:
            await ws.slot_subscribe()
            signature = (await client.send_raw_transaction(bytes(tx))).value
            status = (await client.get_signature_statuses([signature])).value[0]
            assert status is not None
            reply = await raw_rpc(localnet.rpc_url, "localnet_dropSlots", [50])
            assert status.slot in reply["result"]["droppedSlots"], reply
            assert (await client.get_signature_statuses([signature], True)).value == [None]
            # Slot notifications continue on the new branch: its first slot's parent is the fork.
            parents = {}
            for _ in range(200):
                note = await asyncio.wait_for(ws.recv(), 10)
                assert isinstance(note, SlotNotification)
                parents[note.result.slot] = note.result.parent
                if note.result.slot >= reply["result"]["slot"]:
                    break
            assert parents[reply["result"]["slot"]] == reply["result"]["forkSlot"]
