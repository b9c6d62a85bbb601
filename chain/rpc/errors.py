"""Typed RPC errors: retryable (try again, maybe elsewhere) or definitive (the chain said no).

Every error names the JSON-RPC method and the endpoint *name*, never its URL (which may hold an
API key), and carries the JSON-RPC error ``rpc_code`` and ``rpc_data`` when the node sent them.
"""

from __future__ import annotations

from typing import Any

from solders.rpc.errors import (
    BlockCleanedUpMessage,
    BlockNotAvailableMessage,
    BlockStatusNotAvailableYetMessage,
    InternalErrorMessage,
    InvalidParamsMessage,
    InvalidRequestMessage,
    KeyExcludedFromSecondaryIndexMessage,
    LongTermStorageSlotSkippedMessage,
    MethodNotFoundMessage,
    MinContextSlotNotReachedMessage,
    NodeUnhealthyMessage,
    ParseErrorMessage,
    RpcCustomErrorFieldless,
    ScanErrorMessage,
    SendTransactionPreflightFailureMessage,
    SlotSkippedMessage,
    TransactionPrecompileVerificationFailureMessage,
    UnsupportedTransactionVersionMessage,
)
from solders.rpc.responses import RpcSimulateTransactionResult

from chain.rpc import protocol
from core.errors import AIW3Error, DefinitiveChainError, RetryableChainError


class _RpcContext(AIW3Error):
    """What every RPC error carries: the method, the endpoint's name, the node's error code
    and data. Mixed into both sides of the retry line."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        endpoint: str,
        rpc_code: int | None = None,
        rpc_data: Any = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            details={
                "method": method,
                "endpoint": endpoint,
                "rpc_code": rpc_code,
                **(details or {}),
            },
        )
        self.method = method
        self.endpoint = endpoint
        self.rpc_code = rpc_code
        self.rpc_data = rpc_data


class RpcRetryableError(_RpcContext, RetryableChainError):
    """The request may succeed if repeated: transport failure, timeout, 429, node behind."""

    code = "rpc_retryable"


class RpcTransportError(RpcRetryableError):
    """No usable HTTP answer: connection refused or reset, HTTP 5xx, a body that does not parse."""

    code = "rpc_transport_error"


class RpcTimeout(RpcRetryableError):
    code = "rpc_timeout"


class RpcRateLimited(RpcRetryableError):
    """HTTP 429. ``retry_after`` is the server's ``Retry-After`` in seconds, if it sent one."""

    code = "rpc_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, details={"retry_after": retry_after}, **kwargs)
        self.retry_after = retry_after


class RpcNodeError(RpcRetryableError):
    """The node answered with an error that says "not now" (unhealthy, behind, internal error)."""

    code = "rpc_node_error"


class RpcUnavailable(RpcRetryableError):
    """No endpoint could be asked: every circuit breaker is open or every endpoint is cooling
    down after a 429."""

    code = "rpc_unavailable"


class RpcRejected(_RpcContext, DefinitiveChainError):
    """The node refused the request itself; sending it again will not help."""

    code = "rpc_rejected"


class PreflightFailure(RpcRejected):
    """sendTransaction's simulation failed (-32002). ``simulation`` holds err, logs and units."""

    code = "preflight_failed"

    def __init__(self, message: str, *, simulation: RpcSimulateTransactionResult, **kwargs: Any):
        logs = list(simulation.logs or [])
        super().__init__(
            message,
            rpc_data=simulation,
            details={"err": None if simulation.err is None else str(simulation.err), "logs": logs},
            **kwargs,
        )
        self.simulation = simulation
        self.err = simulation.err
        self.logs = logs


# solders parses an error reply into one class per known code and drops the code itself; these
# tables put it back and say which side of the retry line each one falls on.
_RETRYABLE_MESSAGES: dict[type[Any], int] = {
    BlockNotAvailableMessage: protocol.BLOCK_NOT_AVAILABLE,
    NodeUnhealthyMessage: protocol.NODE_UNHEALTHY,
    ScanErrorMessage: protocol.SCAN_ERROR,
    BlockStatusNotAvailableYetMessage: protocol.BLOCK_STATUS_NOT_AVAILABLE_YET,
    MinContextSlotNotReachedMessage: protocol.MIN_CONTEXT_SLOT_NOT_REACHED,
    InternalErrorMessage: protocol.INTERNAL_ERROR,
}
_DEFINITIVE_MESSAGES: dict[type[Any], int] = {
    BlockCleanedUpMessage: protocol.BLOCK_CLEANED_UP,
    TransactionPrecompileVerificationFailureMessage: (
        protocol.TRANSACTION_PRECOMPILE_VERIFICATION_FAILURE
    ),
    SlotSkippedMessage: protocol.SLOT_SKIPPED,
    LongTermStorageSlotSkippedMessage: protocol.LONG_TERM_STORAGE_SLOT_SKIPPED,
    KeyExcludedFromSecondaryIndexMessage: protocol.KEY_EXCLUDED_FROM_SECONDARY_INDEX,
    UnsupportedTransactionVersionMessage: protocol.UNSUPPORTED_TRANSACTION_VERSION,
    ParseErrorMessage: protocol.PARSE_ERROR,
    InvalidRequestMessage: protocol.INVALID_REQUEST,
    MethodNotFoundMessage: protocol.METHOD_NOT_FOUND,
    InvalidParamsMessage: protocol.INVALID_PARAMS,
}
_FIELDLESS: list[tuple[RpcCustomErrorFieldless, int, bool]] = [
    # (variant, code, retryable)
    (
        RpcCustomErrorFieldless.TransactionSignatureVerificationFailure,
        protocol.TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
        False,
    ),
    (RpcCustomErrorFieldless.NoSnapshot, protocol.NO_SNAPSHOT, True),
    (
        RpcCustomErrorFieldless.TransactionHistoryNotAvailable,
        protocol.TRANSACTION_HISTORY_NOT_AVAILABLE,
        False,
    ),
    (
        RpcCustomErrorFieldless.TransactionSignatureLenMismatch,
        protocol.TRANSACTION_SIGNATURE_LEN_MISMATCH,
        False,
    ),
]


def error_from_rpc(
    parsed: object, *, method: str, endpoint: str
) -> RpcRetryableError | RpcRejected:
    """The typed error for one parsed JSON-RPC error object (as solana-py's RPCException holds)."""
    if isinstance(parsed, SendTransactionPreflightFailureMessage):
        return PreflightFailure(
            f"{method} on endpoint {endpoint}: {parsed.message}",
            simulation=parsed.data,
            rpc_code=protocol.SEND_TRANSACTION_PREFLIGHT_FAILURE,
            method=method,
            endpoint=endpoint,
        )
    if isinstance(parsed, RpcCustomErrorFieldless):
        for variant, code, retryable in _FIELDLESS:
            if parsed == variant:
                cls = RpcNodeError if retryable else RpcRejected
                return cls(
                    f"{method} on endpoint {endpoint}: {parsed}",
                    rpc_code=code,
                    method=method,
                    endpoint=endpoint,
                )
    if isinstance(parsed, int):
        # solders returns the bare code for codes it does not know (e.g. a provider's -32000
        # "server busy" or -32429): those are the server's own trouble, so retryable.
        return RpcNodeError(
            f"{method} on endpoint {endpoint}: JSON-RPC error {parsed}",
            rpc_code=parsed,
            method=method,
            endpoint=endpoint,
        )
    message = getattr(parsed, "message", type(parsed).__name__)
    data = getattr(parsed, "data", None)
    retry_code = _RETRYABLE_MESSAGES.get(type(parsed))
    if retry_code is not None:
        return RpcNodeError(
            f"{method} on endpoint {endpoint}: {message}",
            rpc_code=retry_code,
            rpc_data=data,
            method=method,
            endpoint=endpoint,
        )
    definitive_code = _DEFINITIVE_MESSAGES.get(type(parsed))
    if definitive_code is not None:
        return RpcRejected(
            f"{method} on endpoint {endpoint}: {message}",
            rpc_code=definitive_code,
            rpc_data=data,
            method=method,
            endpoint=endpoint,
        )
    return RpcNodeError(
        f"{method} on endpoint {endpoint}: {message}", method=method, endpoint=endpoint
    )
