"""PubSub conformance on a hand-driven chain: exact frames, ordering, context slots and
commitment levels, checked frame by frame (and through solana-py's SolanaWsClient)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.websocket_api import SolanaWsClient
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.responses import SignatureNotification
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chain.localnet import Localnet
from tests.harness.localnet import raw_rpc, send

SOL = 10**9
LAMPORTS = 1_500_000
_MARKER_ID = 999_999


def _transfer_tx(payer: Keypair, to: Pubkey, recent: Any) -> Transaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=LAMPORTS))
    return Transaction([payer], Message([ix], payer.pubkey()), recent)


class _Raw:
    """One raw connection. ``drain`` reads every frame queued so far: it sends a request that
    fails at once, and the server's single outgoing queue puts its reply after them."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._next = 1

    async def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        request_id = self._next
        self._next += 1
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        )
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert reply.get("id") == request_id, reply  # nothing arrives before the reply
        return reply

    async def drain(self) -> list[dict[str, Any]]:
        await self.ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": _MARKER_ID, "method": "slotUnsubscribe", "params": [0]}
            )
        )
        frames = []
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if frame.get("id") == _MARKER_ID:
                assert frame["error"]["code"] == -32602
                return frames
            frames.append(frame)


def _by_sub(frames: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out = {}
    for frame in frames:
        assert set(frame) == {"jsonrpc", "method", "params"}
        assert set(frame["params"]) == {"result", "subscription"}
        sub = frame["params"]["subscription"]
        assert sub not in out, "one notification per subscription and event"
        out[sub] = frame
    return out


async def test_notifications_fire_at_their_commitment_with_the_slot_of_that_level(
    manual_localnet: Localnet,
) -> None:
    chain = manual_localnet.chain
    depth = chain.config.finality_depth
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        dest = Keypair().pubkey()
        tx = _transfer_tx(wallet, dest, chain.current.blockhash)
        signature = str(tx.signatures[0])
        async with websockets.connect(manual_localnet.ws_url) as ws:
            raw = _Raw(ws)
            ids: dict[str, int] = {}
            for level in ("processed", "confirmed", "finalized"):
                subs = {
                    f"sig-{level}": ("signatureSubscribe", [signature, {"commitment": level}]),
                    f"logs-{level}": (
                        "logsSubscribe",
                        [{"mentions": [str(dest)]}, {"commitment": level}],
                    ),
                    f"account-{level}": (
                        "accountSubscribe",
                        [str(dest), {"commitment": level, "encoding": "base64"}],
                    ),
                }
                for name, (method, params) in subs.items():
                    reply = await raw.call(method, params)
                    assert type(reply["result"]) is int
                    ids[name] = reply["result"]
            assert len(set(ids.values())) == len(ids)
            assert await raw.drain() == []

            await send(rpc, tx)
            slot = chain.current.slot
            processed = _by_sub(await raw.drain())
            assert set(processed) == {
                ids["sig-processed"],
                ids["logs-processed"],
                ids["account-processed"],
            }

            # Nothing more until the block is confirmed (one block on top)...
            chain.advance_slot()
            confirmed = _by_sub(await raw.drain())
            assert set(confirmed) == {
                ids["sig-confirmed"],
                ids["logs-confirmed"],
                ids["account-confirmed"],
            }
            # ...and finalized (finality_depth blocks on top).
            for _ in range(depth - 2):
                chain.advance_slot()
            assert await raw.drain() == []
            chain.advance_slot()
            finalized = _by_sub(await raw.drain())
            assert set(finalized) == {
                ids["sig-finalized"],
                ids["logs-finalized"],
                ids["account-finalized"],
            }

            for level, frames in (
                ("processed", processed),
                ("confirmed", confirmed),
                ("finalized", finalized),
            ):
                sig_note = frames[ids[f"sig-{level}"]]
                assert sig_note["method"] == "signatureNotification"
                # The context is the slot of the block at that level when sent: the tx's own.
                assert sig_note["params"]["result"] == {
                    "context": {"slot": slot},
                    "value": {"err": None},
                }
                logs_note = frames[ids[f"logs-{level}"]]["params"]["result"]
                assert frames[ids[f"logs-{level}"]]["method"] == "logsNotification"
                assert logs_note["context"] == {"slot": slot}
                assert logs_note["value"]["signature"] == signature
                assert logs_note["value"]["err"] is None
                assert logs_note["value"]["logs"]
                account_note = frames[ids[f"account-{level}"]]
                assert account_note["method"] == "accountNotification"
                assert account_note["params"]["result"]["context"] == {"slot": slot}
                value = account_note["params"]["result"]["value"]
                assert value["lamports"] == LAMPORTS
                assert value["data"] == ["", "base64"]

            # Signature subscriptions are one-shot: gone after their notification.
            for level in ("processed", "confirmed", "finalized"):
                reply = await raw.call("signatureUnsubscribe", [ids[f"sig-{level}"]])
                assert reply["error"] == {"code": -32602, "message": "Invalid subscription id."}
                reply = await raw.call("logsUnsubscribe", [ids[f"logs-{level}"]])
                assert reply["result"] is True


async def test_signature_already_at_the_commitment_is_notified_at_once(
    manual_localnet: Localnet,
) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        tx = _transfer_tx(wallet, Keypair().pubkey(), chain.current.blockhash)
        await send(rpc, tx)
        landed = chain.current.slot
        chain.advance_slot()  # confirmed, not finalized
        async with SolanaWsClient(manual_localnet.ws_url) as ws:
            for commitment in (Processed, Confirmed):
                sub = await ws.signature_subscribe(
                    signature=tx.signatures[0], commitment=commitment
                )
                note = await asyncio.wait_for(ws.recv(), 10)
                assert isinstance(note, SignatureNotification)
                assert note.subscription == sub.subscription_id
                assert note.result.value.err is None
            pending = await ws.signature_subscribe(signature=tx.signatures[0], commitment=Finalized)
            for _ in range(chain.config.finality_depth - 1):
                chain.advance_slot()
            note = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(note, SignatureNotification)
            assert note.subscription == pending.subscription_id
            assert note.result.context.slot == landed


async def test_subscription_parameter_errors(manual_localnet: Localnet) -> None:
    async with websockets.connect(manual_localnet.ws_url) as ws:
        raw = _Raw(ws)
        only_one = {"code": -32602, "message": "Invalid Request: Only 1 address supported"}
        for mentions in ([], [str(Keypair().pubkey()), str(Keypair().pubkey())]):
            reply = await raw.call("logsSubscribe", [{"mentions": mentions}])
            assert reply["error"] == only_one
        for kind in ("account", "logs", "signature", "slot", "program"):
            reply = await raw.call(f"{kind}Unsubscribe", [424242])
            assert reply["error"] == {"code": -32602, "message": "Invalid subscription id."}
        reply = await raw.call("logsSubscribe", ["all", {"commitment": None}])
        assert type(reply["result"]) is int
        assert await raw.drain() == []


async def test_a_fork_drop_notifies_processed_account_subscribers_of_the_reverted_state(
    manual_localnet: Localnet,
) -> None:
    # A node tells an account subscriber that it last notified on an abandoned fork what the
    # account holds on the new one.
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        dest = Keypair().pubkey()
        async with websockets.connect(manual_localnet.ws_url) as ws:
            raw = _Raw(ws)
            params = [str(dest), {"commitment": "processed", "encoding": "base64"}]
            sub = (await raw.call("accountSubscribe", params))["result"]
            await send(rpc, _transfer_tx(wallet, dest, chain.current.blockhash))
            [note] = await raw.drain()
            assert note["params"]["result"]["value"]["lamports"] == LAMPORTS
            dropped = chain.drop_slots(1)
            [note] = await raw.drain()
            assert note["params"]["subscription"] == sub
            assert note["params"]["result"]["context"] == {"slot": dropped["slot"]}
            value = note["params"]["result"]["value"]
            assert value["lamports"] == 0
            assert value["owner"] == "11111111111111111111111111111111"


async def test_dropping_a_confirmed_block_notifies_confirmed_subscribers_when_the_fork_confirms(
    manual_localnet: Localnet,
) -> None:
    # Confirmed subscribers saw the transfer; after the fork drop they learn the state on the new
    # branch once its first block confirms. Finalized subscribers never saw it: told nothing.
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        dest = Keypair().pubkey()
        async with websockets.connect(manual_localnet.ws_url) as ws:
            raw = _Raw(ws)
            confirmed = (
                await raw.call("accountSubscribe", [str(dest), {"commitment": "confirmed"}])
            )["result"]
            finalized = (
                await raw.call("accountSubscribe", [str(dest), {"commitment": "finalized"}])
            )["result"]
            system = "11111111111111111111111111111111"
            program = (
                await raw.call(
                    "programSubscribe", [system, {"commitment": "confirmed", "encoding": "base64"}]
                )
            )["result"]
            await send(rpc, _transfer_tx(wallet, dest, chain.current.blockhash))
            assert await raw.drain() == []  # processed only
            chain.advance_slot()
            frames = await raw.drain()
            seen = {(f["params"]["subscription"], _lamports(f)) for f in frames}
            wallet_after = SOL - LAMPORTS - 5000
            assert seen == {(confirmed, LAMPORTS), (program, LAMPORTS), (program, wallet_after)}

            chain.drop_slots(2)  # the confirmed block with the transfer, and the current one
            assert await raw.drain() == []  # the new branch has not confirmed yet
            new_branch = chain.current.slot
            chain.advance_slot()
            frames = await raw.drain()
            assert {f["params"]["subscription"] for f in frames} <= {confirmed, program}
            by_sub = {
                (f["params"]["subscription"], _lamports(f)): f["params"]["result"] for f in frames
            }
            # The account is gone again on the new branch; the wallet has its airdrop back.
            assert set(by_sub) == {(confirmed, 0), (program, SOL)}
            assert by_sub[(confirmed, 0)]["context"] == {"slot": new_branch}
            assert by_sub[(confirmed, 0)]["value"]["owner"] == system
            assert by_sub[(program, SOL)]["value"]["pubkey"] == str(wallet.pubkey())

            for _ in range(2 * chain.config.finality_depth):  # the new branch finalizes
                chain.advance_slot()
            frames = await raw.drain()
            assert [f for f in frames if f["params"]["subscription"] == finalized] == []
            assert frames == []


def _lamports(frame: dict[str, Any]) -> int:
    value = frame["params"]["result"]["value"]
    lamports: int = value["account"]["lamports"] if "account" in value else value["lamports"]
    return lamports


async def test_logs_mentions_are_matched_by_address_among_many_subscriptions(
    manual_localnet: Localnet,
) -> None:
    """Indexed by mentioned address: each subscription hears exactly the transactions naming
    its address (and `all` hears every one), whatever else is subscribed; unsubscribing one
    leaves the others on the same address."""
    chain = manual_localnet.chain
    async with (
        AsyncClient(manual_localnet.rpc_url) as rpc,
        websockets.connect(manual_localnet.ws_url) as ws,
    ):
        raw = _Raw(ws)
        wallet, dest, other = Keypair(), Keypair().pubkey(), Keypair().pubkey()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        chain.advance_slot()
        noise = [
            (await raw.call("logsSubscribe", [{"mentions": [str(Keypair().pubkey())]}]))["result"]
            for _ in range(50)
        ]
        processed = {"commitment": "processed"}
        on_dest = [
            (await raw.call("logsSubscribe", [{"mentions": [str(dest)]}, processed]))["result"]
            for _ in range(2)
        ]
        on_other = (await raw.call("logsSubscribe", [{"mentions": [str(other)]}, processed]))[
            "result"
        ]
        everything = (await raw.call("logsSubscribe", ["all", processed]))["result"]
        assert manual_localnet.subscription_count == len(noise) + 4
        tx = _transfer_tx(wallet, dest, chain.current.blockhash)
        await send(rpc, tx)
        heard = _by_sub(await raw.drain())
        assert set(heard) == {*on_dest, everything}
        assert {f["params"]["result"]["value"]["signature"] for f in heard.values()} == {
            str(tx.signatures[0])
        }
        assert (await raw.call("logsUnsubscribe", [on_dest[0]]))["result"] is True
        chain.advance_slot()  # a new blockhash: the same transfer again is a new transaction
        tx = _transfer_tx(wallet, dest, chain.current.blockhash)
        tx_other = _transfer_tx(wallet, other, chain.current.blockhash)
        await send(rpc, tx)
        await send(rpc, tx_other)
        frames = await raw.drain()
        assert [f["params"]["subscription"] for f in frames] == [
            on_dest[1],
            everything,
            on_other,
            everything,
        ]


async def _closed_by_server(ws: ClientConnection) -> int | None:
    """Read what was still queued until the server's close arrives; its close code."""
    for _ in range(100):
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed:
            return ws.close_code
    raise AssertionError("the server did not close the connection")


async def test_drop_connections_closes_them_server_side(manual_localnet: Localnet) -> None:
    """localnet_dropConnections closes the connections holding the given subscriptions (or all
    of them) as a node restart would: the client sees the close (1001), the others keep
    their subscriptions, and a new connection subscribes afresh."""
    chain = manual_localnet.chain
    url = manual_localnet.ws_url
    async with (
        websockets.connect(url) as first,
        websockets.connect(url) as second,
        websockets.connect(url) as third,
    ):
        a, b, c = _Raw(first), _Raw(second), _Raw(third)
        sub_a = (await a.call("slotSubscribe", []))["result"]
        sub_b = (await b.call("slotSubscribe", []))["result"]
        await c.call("slotSubscribe", [])
        assert manual_localnet.subscription_count == 3
        reply = await raw_rpc(manual_localnet.rpc_url, "localnet_dropConnections", [[sub_a, 12345]])
        assert reply["result"] == {"closedConnections": 1, "subscriptions": [sub_a]}
        assert await _closed_by_server(first) == 1001
        assert manual_localnet.subscription_count == 2
        chain.advance_slot()
        assert [f["params"]["subscription"] for f in await b.drain()] == [sub_b]
        reply = await raw_rpc(manual_localnet.rpc_url, "localnet_dropConnections")
        assert reply["result"]["closedConnections"] == 2
        assert await _closed_by_server(second) == 1001
        assert await _closed_by_server(third) == 1001
        assert manual_localnet.subscription_count == 0
        bad = await raw_rpc(manual_localnet.rpc_url, "localnet_dropConnections", ["all"])
        assert bad["error"]["code"] == -32602
    async with websockets.connect(url) as fresh:
        sub = (await _Raw(fresh).call("slotSubscribe", []))["result"]
        chain.advance_slot()
        assert [f["params"]["subscription"] for f in await _Raw(fresh).drain()] == [sub]
