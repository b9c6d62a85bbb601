"""Every error the service raises on purpose.

    AIW3Error                      code, message, details; never carries key material
    ├── ConfigError                a setting is wrong: names the AIW3_* variable to fix
    ├── InputError                 bad input from a caller (HTTP 4xx, CLI usage)
    │   ├── InvalidPublicKey       not base58 or not 32 bytes
    │   └── NotFound               the thing asked for does not exist
    ├── ConflictError              the request clashes with existing state (HTTP 409)
    ├── ChainError                 anything that went wrong talking to Solana
    │   ├── RetryableChainError    transport error, timeout, 429, node behind: try again
    │   └── DefinitiveChainError   the chain said no (preflight failure, bad signature): no retry
    ├── CodecError                 bytes that do not decode as the layout says
    └── StoreError                 the database refused (constraint, lost connection)

Each class has a stable ``code`` used in API error bodies and CLI messages; the message says what
to do next.
"""

from __future__ import annotations

from typing import Any


class AIW3Error(Exception):
    """Base of every deliberate error. ``code`` is stable; ``message`` is for people."""

    code: str = "internal_error"
    http_status: int = 500

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The body of an API error: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(AIW3Error):
    code = "config_error"


class InputError(AIW3Error):
    code = "invalid_input"
    http_status = 400


class InvalidPublicKey(InputError):
    code = "invalid_public_key"


class NotFound(InputError):
    code = "not_found"
    http_status = 404


class ConflictError(AIW3Error):
    code = "conflict"
    http_status = 409


class ChainError(AIW3Error):
    code = "chain_error"
    http_status = 502


class RetryableChainError(ChainError):
    code = "chain_unavailable"
    http_status = 503


class DefinitiveChainError(ChainError):
    code = "chain_rejected"
    http_status = 422


class CodecError(AIW3Error):
    code = "codec_error"
    http_status = 422


class StoreError(AIW3Error):
    code = "store_error"
