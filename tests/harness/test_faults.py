"""The fault-injecting proxy, proven with the project's real clients against the real local
chain: ``chain.rpc.RpcClient`` over HTTP, solana-py and websockets over PubSub."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from prometheus_client import CollectorRegistry
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.websocket_api import SolanaWsClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.rpc.responses import SignatureNotification, SlotNotification
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless
from websockets.exceptions import ConnectionClosed

from chain.localnet import Localnet, LocalnetConfig
from chain.rpc import (
    PreflightFailure,
    RpcClient,
    RpcConfig,
    RpcEndpoint,
    RpcRateLimited,
    RpcTimeout,
    RpcTransportError,
)
from tests.harness.faults import FaultProxy, fault_proxy

__all__ = ["fault_proxy"]  # the fixture, imported for the tests below

SOL = 10**9
# Short timeouts and backoff: every held request would otherwise cost the default 10 s.
CONFIG = RpcConfig(
    request_timeout=0.5, max_attempts=3, backoff_base=0.01, backoff_max=0.05, max_retry_after=2
)
ONE_SHOT = RpcConfig(request_timeout=0.5, max_attempts=1)


@pytest_asyncio.fixture(scope="module")
async def localnet() -> AsyncIterator[Localnet]:
    net = Localnet(LocalnetConfig(slot_ms=20, finality_depth=6), rpc_port=0, ws_port=0)
    await net.start()
    try:
        yield net
    finally:
        await net.stop()


@pytest_asyncio.fixture
async def direct(localnet: Localnet) -> AsyncIterator[RpcClient]:
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry(), config=CONFIG) as rpc:
        yield rpc


@pytest_asyncio.fixture
async def proxied(fault_proxy: FaultProxy) -> AsyncIterator[RpcClient]:
    async with RpcClient([fault_proxy.rpc_url], metrics=CollectorRegistry(), config=CONFIG) as rpc:
        yield rpc


@pytest_asyncio.fixture
async def wallet(direct: RpcClient) -> Keypair:
    """A new wallet holding 10 SOL, its airdrop confirmed."""
    keypair = Keypair()
    await _landed(direct, await direct.request_airdrop(keypair.pubkey(), 10 * SOL), Confirmed)
    return keypair


@pytest_asyncio.fixture
async def landed(direct: RpcClient) -> Signature:
    """The signature of a transaction already processed: subscribing to it notifies at once."""
    signature = await direct.request_airdrop(Keypair().pubkey(), SOL)
    await _landed(direct, signature)
    return signature


async def _landed(rpc: RpcClient, signature: Signature, level: Any = Processed) -> None:
    wanted = 0 if level == Processed else 1
    for _ in range(500):
        status = (await rpc.get_signature_statuses([signature])).value[0]
        if status is not None and status.confirmation_status is not None:
            assert status.err is None
            rank = 0 if str(status.confirmation_status).endswith("Processed") else 1
            if rank >= wanted:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{signature} did not land")


async def _eventually(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


def _transfer(payer: Keypair, blockhash: Hash, lamports: int = 1_500_000) -> bytes:
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=lamports)
    )
    return bytes(Transaction([payer], Message([ix], payer.pubkey()), blockhash))


async def _post(url: str, payload: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, json=payload)


def _call(method: str, params: list[Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}


# ---------------------------------------------------------------------- pass-through


async def test_without_faults_bytes_pass_through(
    localnet: Localnet, fault_proxy: FaultProxy
) -> None:
    batch = [_call("getVersion", request_id=1), _call("getGenesisHash", request_id=2)]
    body = json.dumps(batch).encode()
    direct = await _raw_exchange(localnet.rpc_url, [body])
    proxied = await _raw_exchange(fault_proxy.rpc_url, [body, body, body])
    # Three requests on one keep-alive connection, each answered exactly as the node answers.
    assert proxied == direct * 3
    assert json.loads(direct[0].split(b"\r\n\r\n", 1)[1])[1]["id"] == 2
    assert fault_proxy.counts.http_requests == fault_proxy.counts.forwarded == 3


async def _raw_exchange(url: str, bodies: list[bytes]) -> list[bytes]:
    """POST each body on one connection; the raw responses (head and body)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    out = []
    try:
        for body in bodies:
            writer.write(
                b"POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            out.append(head + await reader.readexactly(length))
    finally:
        writer.close()
    return out


# ---------------------------------------------------------------------- 429


async def test_rate_limit_answers_429_with_retry_after(fault_proxy: FaultProxy) -> None:
    fault_proxy.rate_limit(n=None, retry_after=3, methods={"getBalance"})
    other = await _post(fault_proxy.rpc_url, _call("getSlot"))
    limited = await _post(fault_proxy.rpc_url, _call("getBalance", [str(Keypair().pubkey())]))
    assert other.status_code == 200
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    fault_proxy.rate_limit(n=0)
    again = await _post(fault_proxy.rpc_url, _call("getBalance", [str(Keypair().pubkey())]))
    assert again.status_code == 200
    assert fault_proxy.counts.rate_limited == 1


async def test_rpc_client_waits_out_429_and_succeeds(
    fault_proxy: FaultProxy, proxied: RpcClient, direct: RpcClient
) -> None:
    fault_proxy.rate_limit(n=2, retry_after=0)
    assert await proxied.get_slot() >= 0
    assert fault_proxy.counts.rate_limited == 2
    fault_proxy.rate_limit(n=1, retry_after=7)
    async with RpcClient(
        [fault_proxy.rpc_url], metrics=CollectorRegistry(), config=ONE_SHOT
    ) as once:
        with pytest.raises(RpcRateLimited) as caught:
            await once.get_slot()
    assert caught.value.retry_after == 7


# ---------------------------------------------------------------------- timeouts


async def test_rpc_client_retries_a_timed_out_request(
    fault_proxy: FaultProxy, proxied: RpcClient, direct: RpcClient
) -> None:
    fault_proxy.timeout(n=1)
    slot = await proxied.get_slot()
    assert slot > 0
    assert fault_proxy.counts.timed_out == 1
    assert fault_proxy.counts.forwarded == 1  # the held request never reached the node


async def test_timeout_with_forward_lands_the_transaction_and_loses_the_reply(
    fault_proxy: FaultProxy, direct: RpcClient, wallet: Keypair
) -> None:
    blockhash = (await direct.get_latest_blockhash()).value.blockhash
    raw = _transfer(wallet, blockhash)
    signature = VersionedTransaction.from_bytes(raw).signatures[0]
    fault_proxy.timeout(n=1, methods={"sendTransaction"}, forward=True)
    async with RpcClient(
        [fault_proxy.rpc_url], metrics=CollectorRegistry(), config=ONE_SHOT
    ) as once:
        with pytest.raises(RpcTimeout):
            await once.send_raw_transaction(raw)
        await _landed(direct, signature)
        # Sending the same bytes again is the safe retry: already processed means success.
        assert await once.send_raw_transaction(raw) == signature


async def test_timeout_until_released(fault_proxy: FaultProxy) -> None:
    fault_proxy.timeout(n=None)
    held = asyncio.create_task(_post(fault_proxy.rpc_url, _call("getSlot")))
    await _eventually(lambda: fault_proxy.counts.timed_out == 1)
    assert not held.done()
    fault_proxy.release()
    with pytest.raises(httpx.RemoteProtocolError):
        await held
    assert (await _post(fault_proxy.rpc_url, _call("getSlot"))).status_code == 200


# ---------------------------------------------------------------------- dropped connections


async def test_rpc_client_retries_a_dropped_connection(
    fault_proxy: FaultProxy, proxied: RpcClient
) -> None:
    fault_proxy.drop_http(n=2)
    assert await proxied.get_slot() > 0
    assert fault_proxy.counts.dropped_http == 2
    fault_proxy.drop_http(n=1)
    async with RpcClient(
        [fault_proxy.rpc_url], metrics=CollectorRegistry(), config=ONE_SHOT
    ) as once:
        with pytest.raises(RpcTransportError):
            await once.get_slot()


async def test_rpc_client_fails_over_from_a_dropping_endpoint(
    localnet: Localnet, fault_proxy: FaultProxy
) -> None:
    fault_proxy.drop_http(n=None)
    endpoints = [
        RpcEndpoint(url=fault_proxy.rpc_url, name="flaky"),
        RpcEndpoint(url=localnet.rpc_url, name="good"),
    ]
    async with RpcClient(endpoints, metrics=CollectorRegistry(), config=CONFIG) as rpc:
        for _ in range(3):
            assert await rpc.get_block_height() > 0
    assert fault_proxy.counts.dropped_http >= 1
    assert fault_proxy.counts.forwarded == 0


async def test_drop_with_forward_lands_the_transaction(
    fault_proxy: FaultProxy, direct: RpcClient, proxied: RpcClient, wallet: Keypair
) -> None:
    raw = _transfer(wallet, (await direct.get_latest_blockhash()).value.blockhash)
    fault_proxy.drop_http(n=1, methods={"sendTransaction"}, forward=True)
    # The client retries after the drop; the node already has it, so the retry's
    # AlreadyProcessed is reported as success.
    signature = await proxied.send_raw_transaction(raw)
    await _landed(direct, signature)
    assert fault_proxy.counts.dropped_http == 1


# ---------------------------------------------------------------------- WebSocket drops


async def test_drop_ws_closes_every_connection(localnet: Localnet, fault_proxy: FaultProxy) -> None:
    before = localnet.subscription_count
    async with SolanaWsClient(fault_proxy.ws_url) as ws:
        await ws.slot_subscribe()
        assert isinstance(await asyncio.wait_for(ws.recv(), 10), SlotNotification)
        assert localnet.subscription_count == before + 1
        assert await fault_proxy.drop_ws() == 1
        await _until_closed(ws.recv)
    # The node side went too, so the node holds no subscription for a connection now gone.
    assert localnet.subscription_count == before
    assert fault_proxy.counts.dropped_ws == 1


async def test_drop_ws_picks_connections_by_subscription(fault_proxy: FaultProxy) -> None:
    async with (
        websockets.connect(fault_proxy.ws_url) as first,
        websockets.connect(fault_proxy.ws_url) as second,
    ):
        first_sub = await _subscribe(first, "slotSubscribe", [])
        await _subscribe(second, "slotSubscribe", [])
        assert await fault_proxy.drop_ws(subscriptions=[first_sub], abrupt=False) == 1
        closed = await _until_closed(first.recv)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1012
        frame = json.loads(await asyncio.wait_for(second.recv(), 10))
        assert frame["method"] == "slotNotification"
    await _eventually(lambda: fault_proxy.ws_connections == 0)


async def _until_closed(recv: Callable[[], Awaitable[Any]]) -> ConnectionClosed:
    """Read until the connection closes (frames already on their way may still arrive)."""
    for _ in range(1000):
        try:
            await asyncio.wait_for(recv(), 10)
        except ConnectionClosed as closed:
            return closed
    raise AssertionError("the connection stayed open")


async def _subscribe(ws: Any, method: str, params: list[Any]) -> int:
    await ws.send(json.dumps(_call(method, params, request_id=99)))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame.get("id") == 99:
            sub_id: int = frame["result"]
            return sub_id


# ---------------------------------------------------------------------- duplicate, delay


async def test_duplicate_notifications_sends_each_frame_twice(
    fault_proxy: FaultProxy, landed: Signature
) -> None:
    fault_proxy.duplicate_notifications(True)
    async with websockets.connect(fault_proxy.ws_url) as ws:
        # Already landed: the node notifies at once, after the subscribe reply.
        sub = await _subscribe(ws, "signatureSubscribe", [str(landed), {"commitment": "processed"}])
        first = await asyncio.wait_for(ws.recv(), 10)
        second = await asyncio.wait_for(ws.recv(), 10)
    assert first == second
    assert json.loads(first)["params"]["subscription"] == sub
    assert fault_proxy.counts.duplicated == 1


async def test_solana_py_sees_duplicated_notifications(
    fault_proxy: FaultProxy, landed: Signature
) -> None:
    fault_proxy.duplicate_notifications(True)
    async with SolanaWsClient(fault_proxy.ws_url) as ws:
        await ws.signature_subscribe(signature=landed, commitment=Processed)
        notes = [await asyncio.wait_for(ws.recv(), 10) for _ in range(2)]
    assert all(isinstance(n, SignatureNotification) for n in notes)
    assert notes[0].to_json() == notes[1].to_json()


async def test_delayed_notification_is_held_and_replies_overtake_it(
    fault_proxy: FaultProxy, landed: Signature
) -> None:
    fault_proxy.delay_notifications(3600)
    async with websockets.connect(fault_proxy.ws_url) as ws:
        sub = await _subscribe(ws, "signatureSubscribe", [str(landed), {"commitment": "processed"}])
        await _eventually(lambda: fault_proxy.counts.delayed == 1)
        # The node has sent the notification; the proxy holds it, so the reply to a later
        # request comes first.
        await ws.send(json.dumps(_call("slotUnsubscribe", [123456789], request_id=5)))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["id"] == 5
        assert reply["error"]["code"] == -32602
        fault_proxy.delay_notifications(0)
        note = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert note["method"] == "signatureNotification"
    assert note["params"]["subscription"] == sub


async def test_clear_switches_every_fault_off(fault_proxy: FaultProxy, landed: Signature) -> None:
    fault_proxy.rate_limit(n=None)
    fault_proxy.timeout(n=None)
    fault_proxy.drop_http(n=None)
    fault_proxy.duplicate_notifications(True)
    fault_proxy.delay_notifications(3600)
    view = await fault_proxy.lag(slots=5)
    fault_proxy.clear()
    reply = await _post(fault_proxy.rpc_url, _call("getSlot", [{"commitment": "processed"}]))
    assert reply.status_code == 200
    assert reply.json()["result"] > view
    async with websockets.connect(fault_proxy.ws_url) as ws:
        await _subscribe(ws, "signatureSubscribe", [str(landed), {"commitment": "processed"}])
        note = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert note["method"] == "signatureNotification"
        await ws.send(json.dumps(_call("slotUnsubscribe", [123456789], request_id=5)))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["id"] == 5  # no second copy
    assert fault_proxy.counts.forwarded == 1
    assert fault_proxy.counts.duplicated == fault_proxy.counts.delayed == 0


# ---------------------------------------------------------------------- lagging node


async def test_lagging_node_answers_from_an_older_slot(
    fault_proxy: FaultProxy, direct: RpcClient, proxied: RpcClient, wallet: Keypair
) -> None:
    view = await fault_proxy.lag(slots=3)
    fresh = await direct.get_latest_blockhash()
    assert fresh.slot > view
    stale = await proxied.get_latest_blockhash()
    assert stale.slot == view
    assert stale.value.blockhash != fresh.value.blockhash
    assert stale.value.last_valid_block_height < fresh.value.last_valid_block_height
    assert await proxied.get_slot() == view
    assert await proxied.get_block_height() < await direct.get_block_height()
    assert (await proxied.get_balance(wallet.pubkey())).slot == view
    # Something that landed after the lagging node's slot is unknown to it.
    signature = await direct.send_raw_transaction(_transfer(wallet, fresh.value.blockhash))
    await _landed(direct, signature, Confirmed)
    assert (await proxied.get_signature_statuses([signature])).value == [None]
    assert (await direct.get_signature_statuses([signature])).value[0] is not None
    fault_proxy.lag_off()
    assert (await proxied.get_latest_blockhash()).slot > view


async def test_lagging_node_refuses_a_fresh_blockhash(
    fault_proxy: FaultProxy, direct: RpcClient, proxied: RpcClient, wallet: Keypair
) -> None:
    await fault_proxy.lag(slots=2)
    fresh = (await direct.get_latest_blockhash()).value.blockhash
    raw = _transfer(wallet, fresh)
    with pytest.raises(PreflightFailure) as refused:
        await proxied.send_raw_transaction(raw)
    assert refused.value.err == TransactionErrorFieldless.BlockhashNotFound
    simulated = await proxied.simulate(VersionedTransaction.from_bytes(raw))
    assert simulated.value.err == TransactionErrorFieldless.BlockhashNotFound
    # The chain itself accepts it; so does the lagging node for a blockhash it knows.
    await _landed(direct, await direct.send_raw_transaction(raw))
    known = (await proxied.get_latest_blockhash()).value.blockhash
    await _landed(direct, await proxied.send_raw_transaction(_transfer(wallet, known)))
    assert fault_proxy.counts.blockhash_not_found == 2


async def test_lagging_refusals_match_the_nodes_own(
    localnet: Localnet, fault_proxy: FaultProxy, direct: RpcClient, wallet: Keypair
) -> None:
    """The proxy's BlockhashNotFound replies are exactly what the node gives for a blockhash it
    does not know (here: one that never existed)."""
    unknown = _b64(_transfer(wallet, Hash.new_unique()))
    await fault_proxy.lag(slots=2)
    fresh = _b64(_transfer(wallet, (await direct.get_latest_blockhash()).value.blockhash))
    for method, config in [
        ("sendTransaction", {"encoding": "base64"}),
        ("simulateTransaction", {"encoding": "base64", "commitment": "confirmed"}),
    ]:
        node = (await _post(localnet.rpc_url, _call(method, [unknown, config]))).json()
        lagging = (await _post(fault_proxy.rpc_url, _call(method, [fresh, config]))).json()
        if method == "simulateTransaction":
            for reply in (node, lagging):
                del reply["result"]["context"]["slot"]
        assert lagging == node


async def test_lagging_node_has_not_reached_a_newer_min_context_slot(
    fault_proxy: FaultProxy,
) -> None:
    view = await fault_proxy.lag(slots=1)
    params = [str(Keypair().pubkey()), {"minContextSlot": view + 1}]
    reply = (await _post(fault_proxy.rpc_url, _call("getBalance", params))).json()
    assert reply["error"]["code"] == -32016
    assert reply["error"]["data"] == {"contextSlot": view}
    params = [str(Keypair().pubkey()), {"commitment": "confirmed", "minContextSlot": view}]
    reply = (await _post(fault_proxy.rpc_url, _call("getBalance", params))).json()
    assert reply["result"]["context"]["slot"] == view


async def test_lagging_node_answers_batches_in_order(
    fault_proxy: FaultProxy, direct: RpcClient, wallet: Keypair
) -> None:
    view = await fault_proxy.lag(slots=2)
    fresh = _b64(_transfer(wallet, (await direct.get_latest_blockhash()).value.blockhash))
    batch = [
        _call("getSlot", [{"commitment": "confirmed"}], request_id=1),
        _call("sendTransaction", [fresh, {"encoding": "base64"}], request_id=2),
        _call("getVersion", request_id=3),
    ]
    replies = (await _post(fault_proxy.rpc_url, batch)).json()
    assert [r["id"] for r in replies] == [1, 2, 3]
    assert replies[0]["result"] == view
    assert replies[1]["error"]["data"]["err"] == "BlockhashNotFound"
    assert "solana-core" in replies[2]["result"]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
