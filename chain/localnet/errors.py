"""JSON-RPC errors the local chain answers with, using a real node's codes and messages."""

from __future__ import annotations

from typing import Any

# Codes a Solana node uses (solana-rpc-client-api `custom_error.rs` + JSON-RPC 2.0).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PREFLIGHT_FAILURE = -32002
SIGNATURE_VERIFICATION_FAILURE = -32003
BLOCK_NOT_AVAILABLE = -32004
SLOT_SKIPPED = -32007
UNSUPPORTED_TRANSACTION_VERSION = -32015
MIN_CONTEXT_SLOT_NOT_REACHED = -32016

# solders panics when an error with one of these codes carries no `data`: always send it.
_CODES_NEEDING_DATA = frozenset({-32002, -32005, -32016})


class RpcError(Exception):
    """An error reply: ``{"code", "message", "data"?}``. Raised by method handlers."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None or self.code in _CODES_NEEDING_DATA:
            body["data"] = self.data if self.data is not None else {}
        return body


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)
