"""The minting engine's Prometheus metrics, registered on the caller's registry.

Labels are bounded: a level, a status or state from a fixed set, never an id or an address.
:func:`serve_health` is the worker's own small HTTP endpoint: ``/metrics``, ``/livez`` and
``/readyz``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from store.tables import MINT_STATES


class MintingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.claims = Counter(
            "nft_claims_total",
            "Claims answered, by level and outcome (created, duplicate or the refusal's code).",
            ["level", "status"],
            registry=registry,
        )
        self.claim_duration = Histogram(
            "nft_claim_duration_seconds",
            "Time from a claim's arrival to its answer, by level and outcome.",
            ["level", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.operations = Gauge(
            "nft_mint_operations",
            "Mint operations by state, as the worker last counted them.",
            ["state"],
            registry=registry,
        )
        for state in MINT_STATES:
            self.operations.labels(state).set(0)
        self.retries = Counter(
            "nft_mint_retries_total",
            "Mint steps put off for a cause that can pass (RPC outage, empty fee wallet).",
            # rpc / funds / store / pinning / config / rejected (a definitive preflight
            # rejection, failed once its blockhash provably expires) / other
            ["reason"],
            registry=registry,
        )
        self.resigns = Counter(
            "nft_mint_resigns_total",
            "Mint transactions signed again after their blockhash provably expired.",
            registry=registry,
        )
        self.sent = Counter(
            "nft_mint_sends_total",
            "Signed mint transactions sent or rebroadcast.",
            registry=registry,
        )
        self.fee_wallet_balance = Gauge(
            "nft_fee_wallet_balance_sol",
            "SOL balance of the system wallet that pays for mints.",
            registry=registry,
        )


Check = Callable[[], bool]
_TEXT = "text/plain; charset=utf-8"


async def serve_health(
    registry: CollectorRegistry, *, alive: Check, ready: Check, host: str, port: int
) -> asyncio.Server:
    """Serve ``/metrics``, ``/livez`` (200 while ``alive()``) and ``/readyz`` (200 while
    ``ready()``) on ``host:port`` (0: a free port; see ``server.sockets``). One request per
    connection: probes and scrapers need no more."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
                pass  # the headers say nothing these answers depend on
            parts = request.decode("latin-1").split()
            status, body, kind = _answer(
                parts[1] if len(parts) > 1 else "/", registry, alive, ready
            )
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def _answer(
    path: str, registry: CollectorRegistry, alive: Check, ready: Check
) -> tuple[str, bytes, str]:
    if path == "/metrics":
        return "200 OK", generate_latest(registry), CONTENT_TYPE_LATEST
    checks = {"/livez": alive, "/healthz": alive, "/readyz": ready}
    check = checks.get(path.split("?", 1)[0])
    if check is None:
        return "404 Not Found", b"not found\n", _TEXT
    if check():
        return "200 OK", b"ok\n", _TEXT
    return "503 Service Unavailable", b"not ok\n", _TEXT
