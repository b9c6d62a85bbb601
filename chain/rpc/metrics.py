"""``solana_rpc_duration_seconds{method, endpoint, status}``, with every label bounded.

``method`` is one of :data:`RPC_METHODS`, ``endpoint`` a configured endpoint name (or ``none``
when no endpoint could be asked) and ``status`` one of :data:`STATUSES`.
"""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Histogram

RpcMethod = Literal[
    "getLatestBlockhash",
    "sendTransaction",
    "simulateTransaction",
    "getSignatureStatuses",
    "getTransaction",
    "getSignaturesForAddress",
    "getAccountInfo",
    "getMultipleAccounts",
    "getProgramAccounts",
    "getTokenAccountsByOwner",
    "getTokenLargestAccounts",
    "getSlot",
    "getBlockHeight",
    "getBlock",
    "getBalance",
    "requestAirdrop",
    "getMinimumBalanceForRentExemption",
    "getHealth",
    # One POST of many calls (JSON-RPC batch): its own label, so a batch's duration does not
    # count as one single call's in that method's latency.
    "batch:getTransaction",
    "batch:getSignaturesForAddress",
]
RPC_METHODS: frozenset[str] = frozenset(get_args(RpcMethod))

# ok: answered; rejected: the node refused the request (definitive); error: transport failure,
# HTTP 5xx or an unparsable reply; timeout; rate_limited: HTTP 429; unavailable: the node says
# it is unhealthy, or no endpoint could be asked at all (endpoint label "none").
Status = Literal["ok", "rejected", "error", "timeout", "rate_limited", "unavailable"]
STATUSES: frozenset[str] = frozenset(get_args(Status))
NO_ENDPOINT = "none"


class RpcMetrics:
    """The RPC histogram, registered on the caller's registry (never the global default)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "solana_rpc_duration_seconds",
            "Duration of one Solana JSON-RPC request, by method, endpoint name and outcome.",
            ["method", "endpoint", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )

    def observe(self, method: RpcMethod, endpoint: str, status: Status, seconds: float) -> None:
        self.duration.labels(method=method, endpoint=endpoint, status=status).observe(seconds)
