"""Solana PubSub over WebSocket: account, program, logs, signature and slot subscriptions.

Notifications fire at each subscription's commitment: ``processed`` when a transaction executes,
``confirmed`` / ``finalized`` when its block reaches that level on the slot clock. Each
connection has one outgoing queue, so a subscribe reply always precedes its notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chain.localnet.encoding import encode_account
from chain.localnet.errors import RpcError, invalid_params
from chain.localnet.params import account_filters
from chain.localnet.params import commitment as _commitment
from chain.localnet.params import config as _config
from chain.localnet.params import pubkey as _pubkey
from chain.localnet.params import required as _required
from chain.localnet.params import signature as _signature
from chain.localnet.runtime import (
    Block,
    CommitmentLevel,
    LocalChain,
    SlotAdvance,
    TxRecord,
    reached,
)
from chain.programs import SYSTEM_PROGRAM
from chain.rpc.protocol import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR

_log = logging.getLogger(__name__)
_DELETED = Account(0, b"", SYSTEM_PROGRAM)


@dataclass(eq=False)
class _Connection:
    ws: ServerConnection
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    subs: set[int] = field(default_factory=set)


@dataclass(eq=False)
class _Sub:
    id: int
    kind: str
    conn: _Connection
    commitment: CommitmentLevel
    key: Any = None  # Pubkey (account, logs mentions) or Signature
    config: dict[str, Any] = field(default_factory=dict)


class PubSubServer:
    """A ``ChainObserver`` that serves subscriptions on ``host:port`` (port 0: a free one)."""

    def __init__(self, chain: LocalChain, host: str, port: int) -> None:
        self._chain = chain
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._ids = itertools.count(1)
        self._subs: dict[int, _Sub] = {}
        self._account_subs: dict[Pubkey, dict[int, _Sub]] = {}
        self._signature_subs: dict[Signature, dict[int, _Sub]] = {}
        self._program_subs: dict[Pubkey, dict[int, _Sub]] = {}
        # logsSubscribe: `all` / `allWithVotes` apart, `mentions` by the mentioned address, so a
        # transaction costs a lookup per account key, not a check per subscription.
        self._logs_all: dict[int, _Sub] = {}
        self._logs_mentions: dict[Pubkey, dict[int, _Sub]] = {}
        self._slot_subs: dict[int, _Sub] = {}
        self._connections: set[_Connection] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def subscription_count(self) -> int:
        """Live subscriptions over all connections (a closed connection leaves none behind)."""
        return len(self._subs)

    async def start(self) -> None:
        self._server = await serve(
            self._serve, self._host, self._port, max_size=1 << 20, compression=None
        )
        self._chain.observers.append(self)

    async def stop(self) -> None:
        if self in self._chain.observers:
            self._chain.observers.remove(self)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_connections(self, params: list[Any]) -> dict[str, Any]:
        """``localnet_dropConnections [ids?]`` (test-only): close every PubSub connection, or
        those holding any of the given subscription ids, from the server side, as a node
        restart or a load balancer would (close code 1001, going away). Their subscriptions
        end at once: nothing more is queued for them. Unknown ids are ignored."""
        if params and params[0] is not None:
            ids = params[0]
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise invalid_params("Invalid params: expected a list of subscription ids")
            targets = {self._subs[i].conn for i in ids if i in self._subs}
        else:
            targets = set(self._connections)
        ended = sorted(i for conn in targets for i in conn.subs)
        for conn in targets:
            for sub_id in list(conn.subs):
                self._remove(sub_id)
            task = asyncio.create_task(conn.ws.close(1001, "localnet_dropConnections"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return {"closedConnections": len(targets), "subscriptions": ended}

    # ------------------------------------------------------------------ connections

    async def _serve(self, ws: ServerConnection) -> None:
        conn = _Connection(ws)
        self._connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            async for message in ws:
                self._handle(conn, message)
        except ConnectionClosed:
            pass
        finally:
            for sub_id in list(conn.subs):
                self._remove(sub_id)
            self._connections.discard(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, conn: _Connection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await conn.ws.send(await conn.queue.get())

    def _handle(self, conn: _Connection, message: str | bytes) -> None:
        try:
            request = json.loads(message)
        except (ValueError, UnicodeDecodeError):
            conn.queue.put_nowait(_error_frame(None, RpcError(PARSE_ERROR, "Parse error")))
            return
        requests = request if isinstance(request, list) else [request]
        for item in requests:
            if not isinstance(item, dict) or not isinstance(item.get("method"), str):
                conn.queue.put_nowait(
                    _error_frame(None, RpcError(INVALID_REQUEST, "Invalid request"))
                )
                continue
            request_id = item.get("id")
            params = item.get("params") or []
            try:
                if not isinstance(params, list):
                    raise invalid_params("Invalid params: expected an array of parameters")
                self._dispatch(conn, item["method"], params, request_id)
            except RpcError as exc:
                conn.queue.put_nowait(_error_frame(request_id, exc))
            except Exception:
                _log.exception("localnet pubsub: %s failed", item["method"])
                conn.queue.put_nowait(
                    _error_frame(request_id, RpcError(INTERNAL_ERROR, "Internal error"))
                )

    def _dispatch(self, conn: _Connection, method: str, params: list[Any], request_id: Any) -> None:
        if method.endswith("Unsubscribe") and method[: -len("Unsubscribe")] in _KINDS:
            sub_id = _required(params, 0, int)
            sub = self._subs.get(sub_id)
            if sub is None or sub.conn is not conn or sub.kind != method[: -len("Unsubscribe")]:
                raise invalid_params("Invalid subscription id.")
            self._remove(sub_id)
            conn.queue.put_nowait(_reply(request_id, True))
            return
        if not method.endswith("Subscribe") or method[: -len("Subscribe")] not in _KINDS:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        kind = method[: -len("Subscribe")]
        if kind == "slot":
            sub = _Sub(next(self._ids), kind, conn, CommitmentLevel.PROCESSED)
            self._register(sub, self._slot_subs, request_id)
        elif kind == "account":
            pubkey = _pubkey(_required(params, 0, str))
            config = _config(params, 1)
            sub = _Sub(
                next(self._ids),
                kind,
                conn,
                _commitment(config, CommitmentLevel.FINALIZED),
                pubkey,
                config,
            )
            encode_account(_DELETED, config.get("encoding", "binary"))  # reject bad encodings now
            self._register(sub, self._account_subs.setdefault(pubkey, {}), request_id)
        elif kind == "program":
            program = _pubkey(_required(params, 0, str))
            config = _config(params, 1)
            encode_account(_DELETED, config.get("encoding", "binary"))  # reject bad encodings now
            config["_filters"] = account_filters(config.get("filters"))
            sub = _Sub(
                next(self._ids),
                kind,
                conn,
                _commitment(config, CommitmentLevel.FINALIZED),
                program,
                config,
            )
            self._register(sub, self._program_subs.setdefault(program, {}), request_id)
        elif kind == "logs":
            config = _config(params, 1)
            sub = _Sub(
                next(self._ids),
                kind,
                conn,
                _commitment(config, CommitmentLevel.FINALIZED),
                _logs_filter(params),
            )
            index = (
                self._logs_all if sub.key is None else self._logs_mentions.setdefault(sub.key, {})
            )
            self._register(sub, index, request_id)
        else:
            signature = _signature(_required(params, 0, str))
            config = _config(params, 1)
            sub = _Sub(
                next(self._ids),
                kind,
                conn,
                _commitment(config, CommitmentLevel.FINALIZED),
                signature,
            )
            record = self._chain.status(signature, search_history=True)
            if record is not None and reached(self._chain.commitment_of(record), sub.commitment):
                # Already there: answer, notify at once, and never register (one-shot).
                conn.queue.put_nowait(_reply(request_id, sub.id))
                self._notify_signature(sub, record)
                return
            self._register(sub, self._signature_subs.setdefault(signature, {}), request_id)

    def _register(self, sub: _Sub, index: dict[int, _Sub], request_id: Any) -> None:
        self._subs[sub.id] = sub
        index[sub.id] = sub
        sub.conn.subs.add(sub.id)
        sub.conn.queue.put_nowait(_reply(request_id, sub.id))

    def _remove(self, sub_id: int) -> None:
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return
        sub.conn.subs.discard(sub_id)
        if sub.kind == "account":
            _discard(self._account_subs, sub.key, sub_id)
        elif sub.kind == "program":
            _discard(self._program_subs, sub.key, sub_id)
        elif sub.kind == "signature":
            _discard(self._signature_subs, sub.key, sub_id)
        elif sub.kind == "logs" and sub.key is None:
            self._logs_all.pop(sub_id, None)
        elif sub.kind == "logs":
            _discard(self._logs_mentions, sub.key, sub_id)
        else:
            self._slot_subs.pop(sub_id, None)

    # ------------------------------------------------------------------ chain events

    def on_transaction(self, record: TxRecord, written: Sequence[Pubkey]) -> None:
        self._transaction_events(record, CommitmentLevel.PROCESSED)
        self.on_accounts_written(written)

    def on_accounts_written(self, written: Sequence[Pubkey]) -> None:
        self._account_events(written, CommitmentLevel.PROCESSED)

    def on_slot(self, advance: SlotAdvance) -> None:
        block = advance.block
        root = self._chain.block_at(CommitmentLevel.FINALIZED).slot
        for sub in list(self._slot_subs.values()):
            self._send(sub, {"parent": block.parent_slot, "root": root, "slot": block.slot})
        if advance.confirmed is not None:
            self._block_events(
                advance.confirmed, advance.confirmed_written, CommitmentLevel.CONFIRMED
            )
        if advance.finalized is not None:
            self._block_events(
                advance.finalized, advance.finalized_written, CommitmentLevel.FINALIZED
            )

    def _block_events(
        self, block: Block, written: Sequence[Pubkey], level: CommitmentLevel
    ) -> None:
        if self._logs_all or self._logs_mentions or self._signature_subs:
            for signature in block.signatures:
                record = self._chain.transaction(signature, CommitmentLevel.PROCESSED)
                if record is not None:
                    self._transaction_events(record, level)
        self._account_events(written, level)

    def _transaction_events(self, record: TxRecord, level: CommitmentLevel) -> None:
        for sub in list(self._signature_subs.get(record.signature, {}).values()):
            if sub.commitment is level:
                self._remove(sub.id)
                self._notify_signature(sub, record)
        matched = [s for s in self._logs_all.values() if s.commitment is level]
        if self._logs_mentions:
            for key in dict.fromkeys(record.account_keys):
                subs = self._logs_mentions.get(key)
                if subs:
                    matched += [s for s in subs.values() if s.commitment is level]
            matched.sort(key=lambda s: s.id)  # subscription order, as before the index
        if not matched:
            return
        value = {"signature": str(record.signature), "err": record.err, "logs": record.logs}
        result = {"context": {"slot": self._chain.block_at(level).slot}, "value": value}
        for sub in matched:
            self._send(sub, result)

    def _account_events(self, written: Sequence[Pubkey], level: CommitmentLevel) -> None:
        if not self._account_subs and not self._program_subs:
            return
        for pubkey in written:
            subs = [s for s in self._account_subs.get(pubkey, {}).values() if s.commitment is level]
            account = self._chain.get_account(pubkey, level) if subs or self._program_subs else None
            for sub in subs:
                value = encode_account(
                    account or _DELETED,
                    sub.config.get("encoding", "binary"),
                    sub.config.get("dataSlice"),
                )
                self._send(sub, self._with_context(sub, value))
            if account is None:
                continue
            for sub in list(self._program_subs.get(account.owner, {}).values()):
                if sub.commitment is level and all(f(account) for f in sub.config["_filters"]):
                    value = encode_account(
                        account, sub.config.get("encoding", "binary"), sub.config.get("dataSlice")
                    )
                    self._send(
                        sub, self._with_context(sub, {"pubkey": str(pubkey), "account": value})
                    )

    def _notify_signature(self, sub: _Sub, record: TxRecord) -> None:
        self._send(sub, self._with_context(sub, {"err": record.err}))

    def _with_context(self, sub: _Sub, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self._chain.block_at(sub.commitment).slot}, "value": value}

    def _send(self, sub: _Sub, result: Any) -> None:
        frame = {
            "jsonrpc": "2.0",
            "method": f"{sub.kind}Notification",
            "params": {"result": result, "subscription": sub.id},
        }
        sub.conn.queue.put_nowait(json.dumps(frame, separators=(",", ":")))


_KINDS = frozenset({"account", "program", "logs", "signature", "slot"})


def _logs_filter(params: list[Any]) -> Pubkey | None:
    spec = _required(params, 0, (str, dict))
    if spec in ("all", "allWithVotes"):
        return None
    if isinstance(spec, dict) and isinstance(spec.get("mentions"), list):
        mentions = spec["mentions"]
        if len(mentions) != 1:
            raise invalid_params("Invalid Request: Only 1 address supported")
        return _pubkey(mentions[0])
    raise invalid_params("Invalid params: unknown logs filter")


def _discard(index: dict[Any, dict[int, _Sub]], key: Any, sub_id: int) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.pop(sub_id, None)
        if not subs:
            del index[key]


def _reply(request_id: Any, result: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "result": result, "id": request_id})


def _error_frame(request_id: Any, exc: RpcError) -> str:
    return json.dumps({"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id})
