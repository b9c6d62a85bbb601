"""JSON-RPC errors the local chain answers with, using a real node's codes and messages."""

from __future__ import annotations

from typing import Any

from chain.rpc.protocol import CODES_NEEDING_DATA, INVALID_PARAMS


class RpcError(Exception):
    """An error reply: ``{"code", "message", "data"?}``. Raised by method handlers; the codes
    are those of ``chain.rpc.protocol``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None or self.code in CODES_NEEDING_DATA:
            body["data"] = self.data if self.data is not None else {}
        return body


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)
