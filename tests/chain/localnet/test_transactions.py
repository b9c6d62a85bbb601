"""Transactions beyond a plain send: blocks, epochs and fees, and simulation at a commitment."""

from __future__ import annotations

import base64

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Processed
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from chain.localnet import Localnet
from chain.programs import COMPUTE_BUDGET_PROGRAM
from tests.harness.localnet import (
    raw_rpc,
    send,
)

SOL = 10**9


async def test_blocks_epoch_and_fees(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        ix = transfer(
            TransferParams(
                from_pubkey=wallet.pubkey(), to_pubkey=Keypair().pubkey(), lamports=SOL // 100
            )
        )
        tx = Transaction([wallet], Message([ix], wallet.pubkey()), chain.current.blockhash)
        await send(rpc, tx)
        slot = chain.current.slot
        chain.advance_slot()
        block = await raw_rpc(
            url,
            "getBlock",
            [slot, {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}],
        )
        result = block["result"]
        assert result["parentSlot"] == slot - 1
        assert str(tx.signatures[0]) in [
            t["transaction"]["signatures"][0] for t in result["transactions"]
        ]
        assert result["blockHeight"] == chain.block_by_slot(slot).height  # type: ignore[union-attr]
        assert (await rpc.get_block_time(slot)).value == result["blockTime"]
        future = await raw_rpc(
            url, "getBlock", [chain.current.slot + 5, {"commitment": "confirmed"}]
        )
        assert future["error"]["code"] == -32004
        epoch = (await rpc.get_epoch_info(Processed)).value
        assert epoch.absolute_slot == chain.current.slot
        assert epoch.block_height == chain.current.height

        fee = await raw_rpc(
            url,
            "getFeeForMessage",
            [
                base64.b64encode(
                    bytes(
                        Message.new_with_blockhash([ix], wallet.pubkey(), chain.current.blockhash)
                    )
                ).decode()
            ],
        )
        assert fee["result"]["value"] == 5000
        limit = Instruction(COMPUTE_BUDGET_PROGRAM, b"\x02" + (300_000).to_bytes(4, "little"), [])
        price = Instruction(COMPUTE_BUDGET_PROGRAM, b"\x03" + (10_000).to_bytes(8, "little"), [])
        priced = Message.new_with_blockhash(
            [limit, price, ix], wallet.pubkey(), chain.current.blockhash
        )
        fee = await raw_rpc(url, "getFeeForMessage", [base64.b64encode(bytes(priced)).decode()])
        assert fee["result"]["value"] == 5000 + 3000  # 300k CU x 10k micro-lamports
        unknown = Message.new_with_blockhash([ix], wallet.pubkey(), Hash.new_unique())
        fee = await raw_rpc(url, "getFeeForMessage", [base64.b64encode(bytes(unknown)).decode()])
        assert fee["result"]["value"] is None  # blockhash not (or no longer) valid


async def test_simulate_runs_at_its_commitment(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        ix = transfer(
            TransferParams(
                from_pubkey=wallet.pubkey(), to_pubkey=Keypair().pubkey(), lamports=SOL // 10
            )
        )
        tx = Transaction([wallet], Message([ix], wallet.pubkey()), chain.current.blockhash)
        versioned = VersionedTransaction.from_bytes(bytes(tx))
        at_finalized = (await rpc.simulate_transaction(versioned)).value
        assert at_finalized.err is not None  # BlockhashNotFound on the finalized bank
        at_processed = (await rpc.simulate_transaction(versioned, commitment=Processed)).value
        assert at_processed.err is None
        assert at_processed.logs
        # Nothing was executed for real.
        assert (await rpc.get_signature_statuses([tx.signatures[0]])).value == [None]
