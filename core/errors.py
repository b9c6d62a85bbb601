"""Every error the service raises on purpose.

    AIW3Error                      code, message, details; never carries key material
    ├── ConfigError                a setting is wrong: names what to fix
    ├── InputError                 bad input from a caller (an API 4xx, CLI usage)
    │   ├── InvalidPublicKey       not base58 or not 32 bytes
    │   └── NotFound               the thing asked for does not exist
    ├── ConflictError              the request clashes with existing state
    │   └── StoreConflict          (also a StoreError) a unique or foreign key said no
    ├── ChainError                 anything that went wrong talking to Solana
    │   ├── RetryableChainError    transport error, timeout, 429, node behind: try again
    │   └── DefinitiveChainError   the chain said no (preflight failure, bad signature): no retry
    ├── CodecError                 bytes that do not decode as the layout says
    └── StoreError                 the database refused or could not be reached
        ├── StoreConflict          a constraint was violated: ``constraint`` names it
        └── RetryableStoreError    lost connection, deadlock, lock timeout: try the unit again

Each class has a stable ``code`` used in API error bodies and CLI messages; the message says what
to do next. Nothing here knows HTTP: the API maps classes to statuses in one table, looked up
along the class hierarchy (the most specific class listed wins).
"""

from __future__ import annotations

from typing import Any


class AIW3Error(Exception):
    """Base of every deliberate error. ``code`` is stable; ``message`` is for people."""

    code: str = "internal_error"

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


class InvalidPublicKey(InputError):
    code = "invalid_public_key"


class NotFound(InputError):
    code = "not_found"


class ConflictError(AIW3Error):
    code = "conflict"


class ChainError(AIW3Error):
    code = "chain_error"


class RetryableChainError(ChainError):
    code = "chain_unavailable"


class DefinitiveChainError(ChainError):
    code = "chain_rejected"


class CodecError(AIW3Error):
    code = "codec_error"


class StoreError(AIW3Error):
    code = "store_error"


class StoreConflict(ConflictError, StoreError):
    """A unique or foreign-key constraint refused the write; ``constraint`` is its name
    (the naming convention of ``store.tables`` makes it stable across backends)."""

    code = "store_conflict"

    def __init__(
        self, message: str, *, constraint: str | None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details={"constraint": constraint, **(details or {})})
        self.constraint = constraint


class RetryableStoreError(StoreError):
    """The database could not finish the unit of work (lost connection, deadlock, lock wait
    timeout); nothing of it was committed, so running it again is safe."""

    code = "store_unavailable"
