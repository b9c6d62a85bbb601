"""The RPC client against real HTTP servers on 127.0.0.1 that answer with Solana JSON-RPC
shapes and misbehave on demand (HTTP 500/429/503, hang, dropped connection, error replies).

Timeouts and backoff are shortened so the whole file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from solana.rpc.commitment import Finalized
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from chain.rpc import (
    MAX_MULTIPLE_ACCOUNTS,
    BreakerState,
    PreflightFailure,
    RpcClient,
    RpcConfig,
    RpcEndpoint,
    RpcMetrics,
    RpcNodeError,
    RpcRateLimited,
    RpcRejected,
    RpcTimeout,
    RpcTransportError,
    RpcUnavailable,
    SignaturesQuery,
)
from chain.rpc.protocol import BATCH_CALLS, MAX_REQUEST_BODY_BYTES
from core.errors import DefinitiveChainError, RetryableChainError

SYSTEM = "11111111111111111111111111111111"

FAST = RpcConfig(
    request_timeout=0.5,
    max_attempts=4,
    backoff_base=0.01,
    backoff_max=0.05,
    max_retry_after=1.0,
    breaker_failure_threshold=3,
    breaker_reset_after=0.3,
)


@dataclass
class Misbehave:
    """What the node does with one request instead of answering normally."""

    # "http", "hang", "close", "rpc_error", "garbage"; for a batch also "item_error" (each
    # call at an index of ``items`` answered with that error), "reverse" (replies in reverse
    # order) and "drop_item" (no reply for the call at ``index``). "rpc_error" answers a whole
    # batch with one error object, as a node refusing the batch does.
    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    index: int = 0
    items: dict[int, dict[str, Any]] = field(default_factory=dict)


class FakeNode:
    """A minimal HTTP/1.1 JSON-RPC server (keep-alive, Content-Length bodies)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.params: list[Any] = []
        self.received_at: list[float] = []
        self.body_sizes: list[int] = []
        self.script: deque[Misbehave] = deque()  # one-shot behaviours, consumed in order
        self.always: Misbehave | None = None  # applies when the script is empty
        self.slot = 1_000
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/?api-key=SECRET-KEY-123"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def count(self, method: str) -> int:
        return self.calls.count(method)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length))
                self.body_sizes.append(length)
                self.received_at.append(time.monotonic())
                behaviour = self.script.popleft() if self.script else self.always
                if isinstance(body, list):
                    self.calls.append(f"batch:{body[0]['method']}")
                    self.params.append([call.get("params") for call in body])
                    if behaviour is None or behaviour.kind in _BATCH_ONLY:
                        self._send(writer, 200, self._batch_reply(body, behaviour))
                        await writer.drain()
                        continue
                else:
                    self.calls.append(body["method"])
                    self.params.append(body.get("params"))
                if behaviour is None:
                    self._send(writer, 200, self._reply(body["method"], body.get("params")))
                elif behaviour.kind == "hang":
                    await asyncio.sleep(3600)
                elif behaviour.kind == "close":
                    writer.close()
                    return
                elif behaviour.kind == "http":
                    self._send(writer, behaviour.status, {"oops": True}, behaviour.headers)
                elif behaviour.kind == "garbage":
                    self._send_raw(writer, 200, b"<html>bad gateway</html>", {})
                elif behaviour.kind == "rpc_error":
                    request_id = None if isinstance(body, list) else 0
                    self._send(
                        writer, 200, {"jsonrpc": "2.0", "id": request_id, "error": behaviour.error}
                    )
                await writer.drain()
        finally:
            self._handlers.discard(task)
            writer.close()

    def batch_sizes(self, method: str) -> list[int]:
        name = f"batch:{method}"
        return [len(p) for m, p in zip(self.calls, self.params, strict=True) if m == name]

    def _batch_reply(self, calls: list[Any], behaviour: Misbehave | None) -> list[Any]:
        replies = [
            {**self._reply(call["method"], call.get("params")), "id": call["id"]} for call in calls
        ]
        if behaviour is None:
            return replies
        if behaviour.kind == "item_error":
            for index, error in behaviour.items.items():
                replies[index] = {"jsonrpc": "2.0", "id": calls[index]["id"], "error": error}
        elif behaviour.kind == "reverse":
            replies.reverse()
        elif behaviour.kind == "drop_item":
            del replies[behaviour.index]
        return replies

    def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send_raw(writer, status, json.dumps(payload).encode(), headers or {})

    @staticmethod
    def _send_raw(
        writer: asyncio.StreamWriter, status: int, data: bytes, headers: dict[str, str]
    ) -> None:
        lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(data)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)

    def _context(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self.slot, "apiVersion": "2.0.0"}, "value": value}

    def _account(self, key: str) -> dict[str, Any] | None:
        raw = bytes(Pubkey.from_string(key))
        if raw[0] % 3 == 0:
            return None  # some accounts do not exist
        return {
            "data": [base64.b64encode(raw).decode(), "base64"],
            "executable": False,
            "lamports": raw[1] + 1,
            "owner": SYSTEM,
            "rentEpoch": 2**64 - 1,
            "space": 32,
        }

    def _reply(self, method: str, params: Any) -> dict[str, Any]:
        result: Any
        if method == "getSlot":
            result = self.slot
        elif method == "getBlockHeight":
            result = self.slot - 10
        elif method == "getHealth":
            result = "ok"
        elif method == "getLatestBlockhash":
            result = self._context(
                {"blockhash": str(Hash.new_unique()), "lastValidBlockHeight": self.slot + 140}
            )
        elif method == "getBalance":
            result = self._context(42)
        elif method == "getAccountInfo":
            result = self._context(self._account(params[0]))
        elif method == "getMultipleAccounts":
            result = self._context([self._account(k) for k in params[0]])
        elif method == "getMinimumBalanceForRentExemption":
            result = (128 + params[0]) * 6960
        elif method == "sendTransaction":
            raw = base64.b64decode(params[0])
            result = str(Transaction.from_bytes(raw).signatures[0])
        elif method == "getSignatureStatuses":
            result = self._context(
                [
                    {
                        "slot": self.slot - 1,
                        "confirmations": None,
                        "err": None,
                        "status": {"Ok": None},
                        "confirmationStatus": "finalized",
                    }
                    for _ in params[0]
                ]
            )
        elif method == "getSignaturesForAddress":
            result = [_history_entry(params[0], self.slot)]
        elif method == "getTransaction":
            result = None  # this node keeps no transactions
        else:
            return {
                "jsonrpc": "2.0",
                "id": 0,
                "error": {"code": -32601, "message": "Method not found"},
            }
        return {"jsonrpc": "2.0", "id": 0, "result": result}


_BATCH_ONLY = frozenset({"item_error", "reverse", "drop_item"})


def _history_entry(address: str, slot: int) -> dict[str, Any]:
    """The one signature the fake node lists for ``address``: derived from it, so that a
    reply given to the wrong query shows."""
    return {
        "signature": str(_signature_of(Pubkey.from_string(address))),
        "slot": slot,
        "err": None,
        "memo": None,
        "blockTime": None,
        "confirmationStatus": "finalized",
    }


def _signature_of(address: Pubkey) -> Signature:
    return Signature.from_bytes(bytes(address) * 2)


@pytest.fixture
async def nodes() -> AsyncIterator[list[FakeNode]]:
    started = [FakeNode(), FakeNode()]
    for node in started:
        await node.start()
    yield started
    for node in started:
        await node.stop()


def _client(
    nodes: list[FakeNode], registry: CollectorRegistry | RpcMetrics, config: RpcConfig = FAST
) -> RpcClient:
    endpoints = [
        RpcEndpoint(url=node.url, name=name)
        for node, name in zip(nodes, ("primary", "backup"), strict=False)
    ]
    return RpcClient(endpoints, metrics=registry, config=config)


def _count(registry: CollectorRegistry, method: str, endpoint: str, status: str) -> float:
    value = registry.get_sample_value(
        "solana_rpc_duration_seconds_count",
        {"method": method, "endpoint": endpoint, "status": status},
    )
    return value or 0.0


def _signed_transfer() -> Transaction:
    payer = Keypair()
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=1)
    )
    return Transaction([payer], Message([ix], payer.pubkey()), Hash.new_unique())


PREFLIGHT_ERROR = {
    "code": -32002,
    "message": "Transaction simulation failed: Error processing Instruction 0: custom program "
    "error: 0x1",
    "data": {
        "err": {"InstructionError": [0, {"Custom": 1}]},
        "logs": ["Program 11111111111111111111111111111111 invoke [1]", "Transfer: insufficient"],
        "accounts": None,
        "unitsConsumed": 150,
        "returnData": None,
        "innerInstructions": None,
    },
}


async def test_typed_methods_answer_and_are_measured(nodes: list[FakeNode]) -> None:
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        assert await client.get_slot() == 1_000
        assert await client.get_block_height() == 990
        assert await client.get_health() is True
        blockhash = await client.get_latest_blockhash()
        assert blockhash.slot == 1_000
        assert blockhash.value.last_valid_block_height == 1_140
        balance = await client.get_balance(Pubkey.new_unique())
        assert (balance.slot, balance.value) == (1_000, 42)
        assert await client.get_minimum_balance_for_rent_exemption(0) == 890_880
        tx = _signed_transfer()
        assert await client.send_raw_transaction(bytes(tx)) == tx.signatures[0]
    assert nodes[1].calls == []
    assert _count(registry, "getSlot", "primary", "ok") == 1
    assert _count(registry, "sendTransaction", "primary", "ok") == 1
    # The default commitment is "confirmed", not solana-py's "finalized".
    slot_params = nodes[0].params[nodes[0].calls.index("getSlot")]
    assert slot_params[0]["commitment"] == "confirmed"


async def test_multiple_accounts_are_chunked_and_kept_in_order(nodes: list[FakeNode]) -> None:
    keys = [Pubkey.new_unique() for _ in range(250)]
    keys += [Pubkey.from_bytes(bytes([3 * i]) + bytes(31)) for i in range(1, 6)]  # missing ones
    async with _client(nodes, CollectorRegistry()) as client:
        result = await client.get_multiple_accounts(keys)
    sizes = [
        len(p[0])
        for m, p in zip(nodes[0].calls, nodes[0].params, strict=True)
        if m == "getMultipleAccounts"
    ]
    assert sorted(sizes, reverse=True) == [100, 100, 55]
    assert all(size <= MAX_MULTIPLE_ACCOUNTS for size in sizes)
    assert result.slot == 1_000
    assert len(result.value) == len(keys)
    for key, account in zip(keys, result.value, strict=True):
        if bytes(key)[0] % 3 == 0:
            assert account is None
        else:
            assert account is not None
            assert account.data == bytes(key)


async def test_fails_over_to_the_backup_on_http_500(nodes: list[FakeNode]) -> None:
    registry = CollectorRegistry()
    nodes[0].always = Misbehave("http", status=500)
    async with _client(nodes, registry) as client:
        assert await client.get_slot() == 1_000
    assert nodes[0].count("getSlot") == 1
    assert nodes[1].count("getSlot") == 1
    assert _count(registry, "getSlot", "primary", "error") == 1
    assert _count(registry, "getSlot", "backup", "ok") == 1


async def test_breaker_opens_then_traffic_returns_to_the_recovered_primary(
    nodes: list[FakeNode],
) -> None:
    registry = CollectorRegistry()
    primary, backup = nodes
    primary.always = Misbehave("close")
    async with _client(nodes, registry) as client:
        for _ in range(FAST.breaker_failure_threshold):
            assert await client.get_slot() == 1_000
        assert client.breaker_states()["primary"] is BreakerState.OPEN
        hits_while_open = primary.count("getSlot")
        assert hits_while_open == FAST.breaker_failure_threshold
        # While open, calls go straight to the backup without touching the primary.
        for _ in range(3):
            assert await client.get_slot() == 1_000
        assert primary.count("getSlot") == hits_while_open
        assert backup.count("getSlot") == FAST.breaker_failure_threshold + 3

        primary.always = None  # the primary recovers
        await asyncio.sleep(FAST.breaker_reset_after + 0.05)
        assert client.breaker_states()["primary"] is BreakerState.HALF_OPEN
        backup_before = backup.count("getSlot")
        for _ in range(3):
            assert await client.get_slot() == 1_000
        assert primary.count("getSlot") == hits_while_open + 3
        assert backup.count("getSlot") == backup_before
        assert client.breaker_states()["primary"] is BreakerState.CLOSED


async def test_a_failed_probe_reopens_the_breaker(nodes: list[FakeNode]) -> None:
    primary = nodes[0]
    primary.always = Misbehave("http", status=502)
    async with _client(nodes, CollectorRegistry()) as client:
        for _ in range(FAST.breaker_failure_threshold):
            await client.get_slot()
        await asyncio.sleep(FAST.breaker_reset_after + 0.05)
        before = primary.count("getSlot")
        await client.get_slot()  # the probe fails, the backup answers
        assert primary.count("getSlot") == before + 1
        assert client.breaker_states()["primary"] is BreakerState.OPEN
        await client.get_slot()
        assert primary.count("getSlot") == before + 1


async def test_transport_errors_are_retried_with_backoff_on_one_endpoint(
    nodes: list[FakeNode],
) -> None:
    node = nodes[0]
    node.script.extend([Misbehave("close"), Misbehave("http", status=503), Misbehave("garbage")])
    registry = CollectorRegistry()
    async with _client([node], registry) as client:
        assert await client.get_slot() == 1_000
    assert node.count("getSlot") == 4
    assert _count(registry, "getSlot", "primary", "error") == 2  # closed + garbage
    assert _count(registry, "getSlot", "primary", "unavailable") == 1  # HTTP 503
    assert _count(registry, "getSlot", "primary", "ok") == 1


async def test_gives_up_after_max_attempts_with_a_retryable_error(nodes: list[FakeNode]) -> None:
    node = nodes[0]
    node.always = Misbehave("http", status=500)
    config = RpcConfig(
        request_timeout=0.5,
        max_attempts=3,
        backoff_base=0.01,
        backoff_max=0.02,
        breaker_failure_threshold=10,
    )
    async with _client([node], CollectorRegistry(), config) as client:
        with pytest.raises(RpcTransportError) as info:
            await client.get_slot()
    assert node.count("getSlot") == 3
    err = info.value
    assert isinstance(err, RetryableChainError)
    assert err.details["http_status"] == 500
    assert err.endpoint == "primary"


async def test_timeouts_are_typed_retryable_and_measured(nodes: list[FakeNode]) -> None:
    node = nodes[0]
    node.always = Misbehave("hang")
    registry = CollectorRegistry()
    config = RpcConfig(request_timeout=0.2, max_attempts=2, backoff_base=0.01, backoff_max=0.02)
    async with _client([node], registry, config) as client:
        with pytest.raises(RpcTimeout) as info:
            await client.get_balance(Pubkey.new_unique())
    assert isinstance(info.value, RetryableChainError)
    assert node.count("getBalance") == 2
    assert _count(registry, "getBalance", "primary", "timeout") == 2


async def test_timeout_then_recovery_succeeds(nodes: list[FakeNode]) -> None:
    node = nodes[0]
    node.script.append(Misbehave("hang"))
    config = RpcConfig(request_timeout=0.2, max_attempts=3, backoff_base=0.01, backoff_max=0.02)
    async with _client([node], CollectorRegistry(), config) as client:
        assert await client.get_slot() == 1_000
    assert node.count("getSlot") == 2


async def test_429_waits_for_retry_after(nodes: list[FakeNode]) -> None:
    node = nodes[0]
    node.script.append(Misbehave("http", status=429, headers={"Retry-After": "0.3"}))
    registry = CollectorRegistry()
    async with _client([node], registry) as client:
        assert await client.get_slot() == 1_000
    assert node.count("getSlot") == 2
    # The second request was not sent before the server's Retry-After had passed.
    assert node.received_at[1] - node.received_at[0] >= 0.3
    assert _count(registry, "getSlot", "primary", "rate_limited") == 1


async def test_429_fails_over_and_the_limited_endpoint_is_left_alone(
    nodes: list[FakeNode],
) -> None:
    primary, backup = nodes
    primary.script.append(Misbehave("http", status=429, headers={"Retry-After": "30"}))
    async with _client(nodes, CollectorRegistry()) as client:
        for _ in range(3):
            assert await client.get_slot() == 1_000
    assert primary.count("getSlot") == 1
    assert backup.count("getSlot") == 3


async def test_429_everywhere_for_long_raises_rate_limited(nodes: list[FakeNode]) -> None:
    for node in nodes:
        node.always = Misbehave("http", status=429, headers={"Retry-After": "60"})
    async with _client(nodes, CollectorRegistry()) as client:
        with pytest.raises(RpcRateLimited) as info:
            await client.get_slot()
    assert info.value.retry_after == 60
    assert [n.count("getSlot") for n in nodes] == [1, 1]


async def test_preflight_failure_is_definitive_and_not_retried(nodes: list[FakeNode]) -> None:
    primary, backup = nodes
    primary.always = Misbehave("rpc_error", error=PREFLIGHT_ERROR)
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        with pytest.raises(PreflightFailure) as info:
            await client.send_raw_transaction(bytes(_signed_transfer()))
        # A refusal proves the endpoint is alive: its breaker stays closed.
        assert client.breaker_states()["primary"] is BreakerState.CLOSED
    err = info.value
    assert isinstance(err, DefinitiveChainError)
    assert err.rpc_code == -32002
    assert err.code == "preflight_failed"
    assert err.logs == PREFLIGHT_ERROR["data"]["logs"]  # type: ignore[index]
    assert "Custom" in str(err.err)
    assert err.simulation.units_consumed == 150
    assert primary.count("sendTransaction") == 1
    assert backup.count("sendTransaction") == 0
    assert _count(registry, "sendTransaction", "primary", "rejected") == 1


@pytest.mark.parametrize(
    ("error", "rpc_code"),
    [
        ({"code": -32602, "message": "Invalid params: bad"}, -32602),
        ({"code": -32003, "message": "Transaction signature verification failure"}, -32003),
        ({"code": -32015, "message": "Transaction version (0) is not supported"}, -32015),
    ],
)
async def test_other_definitive_errors_carry_their_code(
    nodes: list[FakeNode], error: dict[str, Any], rpc_code: int
) -> None:
    nodes[0].always = Misbehave("rpc_error", error=error)
    async with _client(nodes, CollectorRegistry()) as client:
        with pytest.raises(RpcRejected) as info:
            await client.get_slot()
    assert info.value.rpc_code == rpc_code
    assert nodes[0].count("getSlot") == 1
    assert nodes[1].count("getSlot") == 0


@pytest.mark.parametrize("code", [-32002, -32005, -32016])
async def test_error_reply_without_data_does_not_panic_the_caller(
    nodes: list[FakeNode], code: int
) -> None:
    # solders raises PanicException (a BaseException) for these; the client turns it into a
    # retryable error and fails over.
    primary, backup = nodes
    primary.always = Misbehave("rpc_error", error={"code": code, "message": "no data here"})
    async with _client(nodes, CollectorRegistry()) as client:
        assert await client.get_slot() == 1_000
        backup.always = Misbehave("rpc_error", error={"code": code, "message": "no data here"})
        with pytest.raises(RpcNodeError) as info:
            await client.get_slot()
    assert isinstance(info.value, RetryableChainError)
    assert "without data" in str(info.value)


async def test_node_unhealthy_and_unknown_codes_are_retryable(nodes: list[FakeNode]) -> None:
    primary, backup = nodes
    primary.script.extend(
        [
            Misbehave(
                "rpc_error",
                error={"code": -32005, "message": "Node is behind", "data": {"numSlotsBehind": 9}},
            ),
            Misbehave("rpc_error", error={"code": -32000, "message": "server busy"}),
        ]
    )
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        assert await client.get_slot() == 1_000  # primary unhealthy -> backup
        assert await client.get_slot() == 1_000  # primary busy -> backup
    assert _count(registry, "getSlot", "primary", "unavailable") == 1
    assert _count(registry, "getSlot", "primary", "error") == 1
    assert backup.count("getSlot") == 2

    backup.always = Misbehave("rpc_error", error={"code": -32000, "message": "server busy"})
    primary.always = backup.always
    async with _client(nodes, CollectorRegistry()) as client:
        with pytest.raises(RpcNodeError) as info:
            await client.get_slot()
    assert info.value.rpc_code == -32000


async def test_all_breakers_open_fails_fast_as_unavailable(nodes: list[FakeNode]) -> None:
    for node in nodes:
        node.always = Misbehave("http", status=500)
    registry = CollectorRegistry()
    config = RpcConfig(
        request_timeout=0.5,
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.02,
        breaker_failure_threshold=1,
        breaker_reset_after=60,
    )
    async with _client(nodes, registry, config) as client:
        with pytest.raises(RpcTransportError):
            await client.get_slot()
        calls = [n.count("getSlot") for n in nodes]
        with pytest.raises(RpcUnavailable) as info:
            await client.get_slot()
        assert [n.count("getSlot") for n in nodes] == calls  # nobody was asked
        assert set(client.breaker_states().values()) == {BreakerState.OPEN}
    assert isinstance(info.value, RetryableChainError)
    assert _count(registry, "getSlot", "none", "unavailable") == 1


async def test_no_url_or_api_key_in_labels_errors_or_logs(
    nodes: list[FakeNode],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for node in nodes:
        node.always = Misbehave("http", status=500)
    registry = CollectorRegistry()
    config = RpcConfig(request_timeout=0.5, max_attempts=2, backoff_base=0.01, backoff_max=0.02)
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx2"):
        # Endpoints named by position, as built from AIW3_RPC_URL + fallbacks.
        async with RpcClient([n.url for n in nodes], metrics=registry, config=config) as client:
            with pytest.raises(RpcTransportError) as info:
                await client.get_slot()
    exposition = generate_latest(registry).decode()
    captured = capsys.readouterr()
    texts = [
        exposition,
        str(info.value),
        repr(info.value),
        json.dumps(info.value.to_dict()),
        caplog.text,
        captured.out,
        captured.err,
    ]
    for text in texts:
        assert "SECRET-KEY-123" not in text
        for node in nodes:
            assert node.url.split("?")[0] not in text
    # Labels and errors do not even name the host.
    for text in texts[:4]:
        assert "127.0.0.1" not in text
    assert "[rpc url hidden]" in caplog.text  # httpx2's request log line, with the URL removed
    assert 'endpoint="0"' in exposition
    assert 'endpoint="1"' in exposition


async def test_metrics_go_to_the_given_registry_only(nodes: list[FakeNode]) -> None:
    from prometheus_client import REGISTRY

    mine = CollectorRegistry()
    shared = RpcMetrics(mine)
    # Two clients may share one registry through one RpcMetrics.
    async with (
        RpcClient([nodes[0].url], metrics=shared, config=FAST) as a,
        RpcClient([nodes[1].url], metrics=shared, config=FAST) as b,
    ):
        await a.get_slot()
        await b.get_slot()
    assert _count(mine, "getSlot", "0", "ok") == 2
    assert (
        REGISTRY.get_sample_value(
            "solana_rpc_duration_seconds_count",
            {"method": "getSlot", "endpoint": "0", "status": "ok"},
        )
        is None
    )


async def test_signature_statuses_keep_order(nodes: list[FakeNode]) -> None:
    sigs = [Signature.new_unique() for _ in range(300)]
    async with _client(nodes, CollectorRegistry()) as client:
        statuses = await client.get_signature_statuses(sigs)
    assert len(statuses.value) == 300
    assert nodes[0].count("getSignatureStatuses") == 2
    assert all(s is not None and s.slot == 999 for s in statuses.value)


def test_endpoint_names_are_checked_and_urls_hidden() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError):
        RpcEndpoint(url="http://h/?api-key=K", name="https://h/?api-key=K")
    with pytest.raises(ConfigError) as info:
        RpcEndpoint(url="ftp://h/?api-key=K", name="x")
    assert "api-key" not in str(info.value)
    assert "api-key" not in repr(RpcEndpoint(url="http://h/?api-key=K", name="x"))
    with pytest.raises(ConfigError, match="must be unique"):
        RpcClient(
            [RpcEndpoint(url="http://a", name="x"), RpcEndpoint(url="http://b", name="x")],
            metrics=CollectorRegistry(),
        )


# -- JSON-RPC batches ----------------------------------------------------------------------------

NODE_BEHIND = {"code": -32005, "message": "Node is behind", "data": {"numSlotsBehind": 9}}


def _queries(count: int) -> list[SignaturesQuery]:
    return [SignaturesQuery(Pubkey.new_unique(), limit=10) for _ in range(count)]


def _answered(queries: list[SignaturesQuery], pages: list[list[Any]]) -> bool:
    """Each page is the fake node's answer to its own query."""
    return [[e.signature for e in page] for page in pages] == [
        [_signature_of(q.address)] for q in queries
    ]


async def test_batches_are_chunked_and_replies_matched_by_id(nodes: list[FakeNode]) -> None:
    primary = nodes[0]
    # The first POST answered in reverse order: replies are matched to calls by id.
    primary.script.append(Misbehave("reverse"))
    queries = _queries(2 * BATCH_CALLS + 50)
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        pages = await client.get_signatures_for_address_many(queries)
        transactions = await client.get_transactions([Signature.new_unique() for _ in range(150)])
    assert _answered(queries, pages)
    assert sorted(primary.batch_sizes("getSignaturesForAddress")) == [50, 100, 100]
    assert primary.count("getSignaturesForAddress") == 0  # no single calls
    # Each call carries the query's own parameters and the client's default commitment.
    sent = [p for m, p in zip(primary.calls, primary.params, strict=True) if m.startswith("batch:")]
    by_address = {call[0]: call[1] for post in sent for call in post if len(call) == 2}
    assert by_address[str(queries[7].address)]["limit"] == 10
    assert by_address[str(queries[7].address)]["commitment"] == "confirmed"
    assert transactions == [None] * 150
    assert sorted(primary.batch_sizes("getTransaction")) == [50, 100]
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "ok") == 3
    assert _count(registry, "batch:getTransaction", "primary", "ok") == 2
    assert nodes[1].calls == []


async def test_a_failed_batch_post_fails_over_whole(nodes: list[FakeNode]) -> None:
    primary, backup = nodes
    primary.script.append(Misbehave("http", status=500))
    queries = _queries(30)
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        pages = await client.get_signatures_for_address_many(queries)
    assert _answered(queries, pages)
    assert primary.batch_sizes("getSignaturesForAddress") == [30]
    assert backup.batch_sizes("getSignaturesForAddress") == [30]
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "error") == 1
    assert _count(registry, "batch:getSignaturesForAddress", "backup", "ok") == 1


async def test_a_retryable_error_inside_a_batch_retries_the_post_elsewhere(
    nodes: list[FakeNode],
) -> None:
    """One call answered "node behind" fails the POST as it fails that single call: the POST
    goes whole to the next endpoint, and the primary's breaker counts a failure."""
    primary, backup = nodes
    primary.script.append(Misbehave("item_error", items={3: NODE_BEHIND}))
    queries = _queries(10)
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        pages = await client.get_signatures_for_address_many(queries)
        assert _answered(queries, pages)
        # The same with a bare -32000 "busy" and the -32005 solders cannot parse without data.
        for error in (
            {"code": -32000, "message": "server busy"},
            {"code": -32005, "message": "no data here"},
        ):
            primary.script.append(Misbehave("item_error", items={9: error}))
            assert _answered(queries, await client.get_signatures_for_address_many(queries))
    assert backup.batch_sizes("getSignaturesForAddress") == [10, 10, 10]
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "unavailable") == 1
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "error") == 2
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "ok") == 0


async def test_an_unusable_batch_reply_is_retried_with_backoff_on_one_endpoint(
    nodes: list[FakeNode],
) -> None:
    node = nodes[0]
    node.script.extend([Misbehave("close"), Misbehave("garbage"), Misbehave("drop_item", index=4)])
    queries = _queries(8)
    registry = CollectorRegistry()
    async with _client([node], registry) as client:
        assert _answered(queries, await client.get_signatures_for_address_many(queries))
    assert node.batch_sizes("getSignaturesForAddress") == [8, 8, 8, 8]
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "error") == 3
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "ok") == 1


async def test_a_refused_call_in_a_batch_is_raised_at_once(nodes: list[FakeNode]) -> None:
    primary, backup = nodes
    invalid = {"code": -32602, "message": "Invalid params: Invalid limit; max 1000"}
    primary.script.append(Misbehave("item_error", items={7: invalid, 9: invalid}))
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        with pytest.raises(RpcRejected) as info:
            await client.get_signatures_for_address_many(_queries(BATCH_CALLS + 20))
        assert client.breaker_states()["primary"] is BreakerState.CLOSED
    err = info.value
    assert isinstance(err, DefinitiveChainError)
    assert err.rpc_code == -32602
    assert err.method == "batch:getSignaturesForAddress"  # the request that carried it
    # The first refused call; whichever POST reached the primary first held it, and its index
    # is among all the calls.
    assert err.details["batch_item"] in (7, BATCH_CALLS + 7)
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "rejected") == 1
    assert backup.calls == []


async def test_a_refusal_beside_a_retryable_error_retries_the_post(nodes: list[FakeNode]) -> None:
    """The retryable call might succeed on a retry, as its single call would be retried;
    the refusal that stays is raised from the retry."""
    primary, backup = nodes
    invalid = {"code": -32602, "message": "Invalid params: Invalid limit; max 1000"}
    primary.script.append(Misbehave("item_error", items={2: invalid, 5: NODE_BEHIND}))
    backup.script.append(Misbehave("item_error", items={2: invalid}))
    registry = CollectorRegistry()
    async with _client(nodes, registry) as client:
        with pytest.raises(RpcRejected) as info:
            await client.get_signatures_for_address_many(_queries(10))
    assert info.value.details["batch_item"] == 2
    assert info.value.endpoint == "backup"
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "unavailable") == 1
    assert _count(registry, "batch:getSignaturesForAddress", "backup", "rejected") == 1


async def test_a_node_that_refuses_the_batch_itself_is_definitive(nodes: list[FakeNode]) -> None:
    primary, backup = nodes
    primary.always = Misbehave("rpc_error", error={"code": -32600, "message": "Invalid request"})
    async with _client(nodes, CollectorRegistry()) as client:
        with pytest.raises(RpcRejected) as info:
            await client.get_transactions([Signature.new_unique()])
    assert info.value.rpc_code == -32600
    assert backup.calls == []


async def test_batch_gives_up_with_the_typed_error_of_a_post(nodes: list[FakeNode]) -> None:
    """Every POST failing: the caller gets the retryable error itself (not an exception group
    of the POSTs in flight), after max_attempts requests per POST."""
    node = nodes[0]
    node.always = Misbehave("http", status=500)
    config = dataclasses.replace(FAST, max_attempts=2, breaker_failure_threshold=100)
    async with _client([node], CollectorRegistry(), config) as client:
        with pytest.raises(RpcTransportError) as info:
            await client.get_transactions([Signature.new_unique() for _ in range(3 * BATCH_CALLS)])
        assert info.value.details["http_status"] == 500
        # The first POST to give up cancels the others.
        assert 2 <= len(node.batch_sizes("getTransaction")) <= 3 * 2
        # The same for chunked single requests.
        with pytest.raises(RpcTransportError):
            await client.get_multiple_accounts([Pubkey.new_unique() for _ in range(250)])


async def test_a_hanging_batch_times_out_and_fails_over(nodes: list[FakeNode]) -> None:
    primary, backup = nodes
    primary.always = Misbehave("hang")
    registry = CollectorRegistry()
    config = dataclasses.replace(FAST, request_timeout=0.2, max_attempts=2)
    queries = _queries(5)
    async with _client(nodes, registry, config) as client:
        assert _answered(queries, await client.get_signatures_for_address_many(queries))
        backup.always = Misbehave("hang")
        with pytest.raises(RpcTimeout):
            await client.get_signatures_for_address_many(queries)
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "timeout") == 2
    assert _count(registry, "batch:getSignaturesForAddress", "backup", "timeout") == 1


async def test_a_full_batch_of_the_longest_calls_fits_a_nodes_body_limit(
    nodes: list[FakeNode],
) -> None:
    """BATCH_CALLS calls with every parameter set stay under agave's default request body
    limit, so a real node never refuses a batch POST with HTTP 413."""
    node = nodes[0]
    queries = [
        SignaturesQuery(
            Pubkey.new_unique(),
            before=Signature.new_unique(),
            until=Signature.new_unique(),
            limit=1000,
        )
        for _ in range(BATCH_CALLS)
    ]
    async with _client([node], CollectorRegistry()) as client:
        await client.get_signatures_for_address_many(queries, commitment=Finalized)
        await client.get_transactions(
            [Signature.new_unique() for _ in range(BATCH_CALLS)],
            encoding="jsonParsed",
            commitment=Finalized,
        )
    assert node.batch_sizes("getSignaturesForAddress") == [BATCH_CALLS]
    assert node.batch_sizes("getTransaction") == [BATCH_CALLS]
    assert max(node.body_sizes) < MAX_REQUEST_BODY_BYTES


async def test_a_rate_limited_batch_waits_for_retry_after_then_breakers_fail_fast(
    nodes: list[FakeNode],
) -> None:
    node = nodes[0]
    node.script.append(Misbehave("http", status=429, headers={"Retry-After": "0.3"}))
    queries = _queries(5)
    registry = CollectorRegistry()
    metrics = RpcMetrics(registry)
    async with _client([node], metrics) as client:
        assert _answered(queries, await client.get_signatures_for_address_many(queries))
    assert node.received_at[1] - node.received_at[0] >= 0.3
    assert _count(registry, "batch:getSignaturesForAddress", "primary", "rate_limited") == 1

    node.always = Misbehave("http", status=500)
    config = dataclasses.replace(FAST, breaker_failure_threshold=1, breaker_reset_after=60)
    async with _client([node], metrics, config) as client:
        with pytest.raises(RpcTransportError):
            await client.get_signatures_for_address_many(queries)
        sent = len(node.calls)
        with pytest.raises(RpcUnavailable):
            await client.get_transactions([Signature.new_unique()])
        assert len(node.calls) == sent  # the open breaker kept the batch from being sent
    assert _count(registry, "batch:getTransaction", "none", "unavailable") == 1
