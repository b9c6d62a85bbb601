"""The local chain as a node: JSON-RPC over HTTP, PubSub over WebSocket, and the slot clock."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from chain.localnet.httpserver import HttpRpcServer
from chain.localnet.methods import RpcMethods
from chain.localnet.pubsub import PubSubServer
from chain.localnet.runtime import LocalChain, LocalnetConfig


class Localnet:
    """Runs a ``LocalChain`` behind the Solana wire protocol until stopped.

    Ports 0 pick free ports; read ``rpc_url`` / ``ws_url`` after ``start()``.
    """

    def __init__(
        self,
        config: LocalnetConfig | None = None,
        *,
        host: str = "127.0.0.1",
        rpc_port: int = 8899,
        ws_port: int = 8900,
    ) -> None:
        self.config = config or LocalnetConfig()
        self.host = host
        self.chain = LocalChain(self.config)
        self._pubsub = PubSubServer(self.chain, host, ws_port)
        methods = RpcMethods(
            self.chain, extra={"localnet_dropConnections": self._pubsub.drop_connections}
        )
        self._http = HttpRpcServer(methods, host, rpc_port)
        self._clock: asyncio.Task[None] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self._http.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self._pubsub.port}"

    @property
    def subscription_count(self) -> int:
        return self._pubsub.subscription_count

    async def start(self) -> None:
        await self._http.start()
        await self._pubsub.start()
        self._clock = asyncio.create_task(self._run_clock(), name="localnet-slot-clock")

    async def stop(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        await self._pubsub.stop()
        await self._http.stop()

    async def __aenter__(self) -> Localnet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.slot_ms / 1000
        deadline = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self.chain.advance_slot()
            deadline += interval
            # After a stall (a long request, a suspended process) do not burst slots to catch up.
            deadline = max(deadline, loop.time())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
