"""PubSub over WebSocket, driven by solana-py's SolanaWsClient (and raw frames for the wire)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed, Finalized, Processed
from solana.rpc.models import MemcmpOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    LogsNotification,
    ProgramNotification,
    SignatureNotification,
    SlotNotification,
)
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from spl.token.instructions import get_associated_token_address

from chain.localnet import Localnet
from tests.harness.localnet import (
    T22,
    blockhash,
    mint_nft_tx,
    mint_rent_size,
    status_rank,
    wait_status,
)

LAMPORTS = 1_500_000
_RANK = {Processed: 0, Confirmed: 1, Finalized: 2}


async def _send_transfer(client: AsyncClient, payer: Keypair, to: Pubkey) -> Signature:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=LAMPORTS))
    tx = Transaction([payer], Message([ix], payer.pubkey()), await blockhash(client))
    return (await client.send_raw_transaction(bytes(tx))).value


async def _recv(ws: SolanaWsClient) -> Any:
    return await asyncio.wait_for(ws.recv(), timeout=10)


async def test_slot_subscription(localnet: Localnet) -> None:
    async with SolanaWsClient(localnet.ws_url) as ws:
        sub = await ws.slot_subscribe()
        seen = []
        for _ in range(4):
            note = await _recv(ws)
            assert isinstance(note, SlotNotification)
            assert note.subscription == sub.subscription_id
            seen.append(note.result)
        for info in seen:
            assert info.parent < info.slot
            assert info.root <= info.slot
        assert [i.slot for i in seen] == sorted(i.slot for i in seen)
        assert len({i.slot for i in seen}) == 4
        await ws.unsubscribe(sub)


@pytest.mark.parametrize("commitment", [Processed, Confirmed, Finalized])
async def test_signature_subscription_fires_at_its_commitment(
    localnet: Localnet, client: AsyncClient, funded: Keypair, commitment: Commitment
) -> None:
    dest = Keypair().pubkey()
    ix = transfer(TransferParams(from_pubkey=funded.pubkey(), to_pubkey=dest, lamports=LAMPORTS))
    tx = Transaction([funded], Message([ix], funded.pubkey()), await blockhash(client))
    async with SolanaWsClient(localnet.ws_url) as ws:
        sub = await ws.signature_subscribe(signature=tx.signatures[0], commitment=commitment)
        await client.send_raw_transaction(bytes(tx))
        note = await _recv(ws)
        assert isinstance(note, SignatureNotification)
        assert note.subscription == sub.subscription_id
        assert note.result.value.err is None
        status = (await client.get_signature_statuses([tx.signatures[0]])).value[0]
        assert status is not None
        # Notified no earlier than the commitment asked for, and the context is at least the
        # transaction's slot.
        assert status_rank(status.confirmation_status) >= _RANK[commitment]
        assert note.result.context.slot >= status.slot
        # One-shot: the handle is gone after its notification.
        with pytest.raises(ValueError, match="no longer active"):
            await ws.unsubscribe(sub)


async def test_signature_already_landed_is_notified_at_once(
    localnet: Localnet, client: AsyncClient, funded: Keypair
) -> None:
    signature = await _send_transfer(client, funded, Keypair().pubkey())
    await wait_status(client, signature, "finalized")
    async with websockets.connect(localnet.ws_url) as raw:
        await raw.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "signatureSubscribe",
                    "params": [str(signature), {"commitment": "finalized"}],
                }
            )
        )
        reply = json.loads(await asyncio.wait_for(raw.recv(), 10))
        note = json.loads(await asyncio.wait_for(raw.recv(), 10))
    # The subscribe reply comes first, then the notification for that id.
    assert reply["id"] == 3
    assert isinstance(reply["result"], int)
    assert note["method"] == "signatureNotification"
    assert note["params"]["subscription"] == reply["result"]
    assert note["params"]["result"]["value"] == {"err": None}
    # ...and it was never registered (one-shot, already delivered).
    async with SolanaWsClient(localnet.ws_url) as ws:
        sub = await ws.signature_subscribe(signature=signature, commitment=Confirmed)
        note2 = await _recv(ws)
        assert isinstance(note2, SignatureNotification)
        assert note2.subscription == sub.subscription_id


@pytest.mark.parametrize("commitment", [Processed, Confirmed, Finalized])
async def test_logs_subscription_mentions(
    localnet: Localnet, client: AsyncClient, funded: Keypair, commitment: Commitment
) -> None:
    watched = Keypair().pubkey()
    async with SolanaWsClient(localnet.ws_url) as ws:
        sub = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(watched), commitment=commitment
        )
        other = await _send_transfer(client, funded, Keypair().pubkey())
        mine = await _send_transfer(client, funded, watched)
        note = await _recv(ws)
        assert isinstance(note, LogsNotification)
        assert note.subscription == sub.subscription_id
        assert note.result.value.signature == mine  # the unrelated transfer was not sent
        assert note.result.value.err is None
        assert note.result.value.logs == [
            "Program 11111111111111111111111111111111 invoke [1]",
            "Program 11111111111111111111111111111111 success",
        ]
        status = (await client.get_signature_statuses([mine])).value[0]
        assert status is not None
        assert status_rank(status.confirmation_status) >= _RANK[commitment]
        assert other != mine
        await ws.unsubscribe(sub)


async def test_logs_subscription_all(
    localnet: Localnet, client: AsyncClient, funded: Keypair
) -> None:
    async with SolanaWsClient(localnet.ws_url) as ws:
        await ws.logs_subscribe(commitment=Confirmed)
        sent = {
            await _send_transfer(client, funded, Keypair().pubkey()),
            await _send_transfer(client, funded, Keypair().pubkey()),
        }
        seen: set[Signature] = set()
        for _ in range(20):
            note = await _recv(ws)
            assert isinstance(note, LogsNotification)
            seen.add(note.result.value.signature)
            if sent <= seen:
                break
        assert sent <= seen


@pytest.mark.parametrize("commitment", [Processed, Confirmed, Finalized])
async def test_account_subscription(
    localnet: Localnet, client: AsyncClient, funded: Keypair, commitment: Commitment
) -> None:
    dest = Keypair().pubkey()
    async with SolanaWsClient(localnet.ws_url) as ws:
        sub = await ws.account_subscribe(pubkey=dest, commitment=commitment, encoding="base64")
        signature = await _send_transfer(client, funded, dest)
        note = await _recv(ws)
        assert isinstance(note, AccountNotification)
        assert note.subscription == sub.subscription_id
        assert note.result.value.lamports == LAMPORTS
        status = (await client.get_signature_statuses([signature])).value[0]
        assert status is not None
        assert status_rank(status.confirmation_status) >= _RANK[commitment]
        # The account as of the notification's context slot, read over HTTP, agrees.
        balance = await client.get_balance(dest, commitment)
        assert balance.value == LAMPORTS
        await ws.unsubscribe(sub)


async def test_subscription_errors_on_the_wire(localnet: Localnet) -> None:
    async with websockets.connect(localnet.ws_url) as raw:

        async def call(method: str, params: list[Any]) -> dict[str, Any]:
            await raw.send(
                json.dumps({"jsonrpc": "2.0", "id": 9, "method": method, "params": params})
            )
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(raw.recv(), 10))
            return reply

        reply = await call("logsUnsubscribe", [987654])
        assert reply["error"] == {"code": -32602, "message": "Invalid subscription id."}
        a, b = str(Keypair().pubkey()), str(Keypair().pubkey())
        reply = await call("logsSubscribe", [{"mentions": [a, b]}])
        assert reply["error"]["code"] == -32602
        reply = await call("accountSubscribe", [a, {"commitment": None, "encoding": None}])
        sub_id = reply["result"]
        assert isinstance(sub_id, int)
        # An id of another kind does not unsubscribe it.
        assert (await call("slotUnsubscribe", [sub_id]))["error"]["code"] == -32602
        assert (await call("accountUnsubscribe", [sub_id]))["result"] is True
        assert (await call("accountUnsubscribe", [sub_id]))["error"]["code"] == -32602
        assert (await call("nopeSubscribe", []))["error"]["code"] == -32601


async def test_reconnect_gets_a_clean_slate(
    localnet: Localnet, client: AsyncClient, funded: Keypair
) -> None:
    dest = Keypair().pubkey()
    before = localnet.subscription_count
    async with SolanaWsClient(localnet.ws_url) as first:
        await first.account_subscribe(pubkey=dest, commitment=Processed)
        await first.slot_subscribe()
        assert localnet.subscription_count == before + 2
    # The server drops a closed connection's subscriptions (bounded wait for the close).
    for _ in range(500):
        if localnet.subscription_count == before:
            break
        await asyncio.sleep(0.01)
    assert localnet.subscription_count == before
    async with SolanaWsClient(localnet.ws_url) as second:
        sub = await second.account_subscribe(pubkey=dest, commitment=Confirmed)
        await _send_transfer(client, funded, dest)
        note = await _recv(second)
        assert isinstance(note, AccountNotification)
        assert note.subscription == sub.subscription_id
        assert note.result.value.lamports == LAMPORTS


async def test_program_subscription_with_filters(
    localnet: Localnet, client: AsyncClient, funded: Keypair
) -> None:
    holder = Keypair().pubkey()
    mint = Keypair()
    rent = (await client.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
    async with SolanaWsClient(localnet.ws_url) as ws:
        sub = await ws.program_subscribe(
            program_id=T22,
            commitment=Confirmed,
            encoding="base64",
            filters=[170, MemcmpOpts(offset=32, bytes=str(holder))],
        )
        tx = mint_nft_tx(funded, mint, holder, rent, await blockhash(client))
        await client.send_raw_transaction(bytes(tx))
        note = await _recv(ws)
        assert isinstance(note, ProgramNotification)
        assert note.subscription == sub.subscription_id
        keyed = note.result.value
        assert keyed.pubkey == get_associated_token_address(holder, mint.pubkey(), T22)
        assert bytes(keyed.account.data)[:32] == bytes(mint.pubkey())
        # The mint account (also Token-2022-owned) did not match the filters.
        await ws.unsubscribe(sub)
