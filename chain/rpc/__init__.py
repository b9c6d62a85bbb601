"""Solana JSON-RPC: one client over several endpoints with failover, retries, circuit breakers,
typed errors and the ``solana_rpc_duration_seconds`` histogram."""

from chain.rpc.breaker import BreakerState
from chain.rpc.client import RpcClient, SignaturesQuery
from chain.rpc.config import RpcConfig, RpcEndpoint, endpoints_from_urls
from chain.rpc.errors import (
    PreflightFailure,
    RpcNodeError,
    RpcRateLimited,
    RpcRejected,
    RpcRetryableError,
    RpcTimeout,
    RpcTransportError,
    RpcUnavailable,
)
from chain.rpc.metrics import RPC_METHODS, STATUSES, RpcMetrics
from chain.rpc.protocol import MAX_MULTIPLE_ACCOUNTS
from core.types import Slotted

__all__ = [
    "MAX_MULTIPLE_ACCOUNTS",
    "RPC_METHODS",
    "STATUSES",
    "BreakerState",
    "PreflightFailure",
    "RpcClient",
    "RpcConfig",
    "RpcEndpoint",
    "RpcMetrics",
    "RpcNodeError",
    "RpcRateLimited",
    "RpcRejected",
    "RpcRetryableError",
    "RpcTimeout",
    "RpcTransportError",
    "RpcUnavailable",
    "SignaturesQuery",
    "Slotted",
    "endpoints_from_urls",
]
