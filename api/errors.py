"""HTTP statuses for the error tree of ``core.errors``, in one table.

The error classes know nothing of HTTP; the API looks a raised error's class up along its method
resolution order, so the most specific class listed wins (as Starlette's exception handlers do)
and a new subclass inherits its parent's status until the table says otherwise.
"""

from __future__ import annotations

from typing import Final

from core.errors import (
    AIW3Error,
    ChainError,
    CodecError,
    ConfigError,
    ConflictError,
    DefinitiveChainError,
    InputError,
    NotFound,
    RetryableChainError,
    RetryableStoreError,
    StoreError,
)

STATUS_BY_ERROR: Final[dict[type[AIW3Error], int]] = {
    AIW3Error: 500,
    ConfigError: 500,  # our configuration, not the caller's fault
    InputError: 400,
    NotFound: 404,
    ConflictError: 409,
    ChainError: 502,
    RetryableChainError: 503,
    DefinitiveChainError: 422,
    CodecError: 422,
    StoreError: 500,
    RetryableStoreError: 503,
}


def status_for(error: BaseException) -> int:
    """The HTTP status for ``error``: its nearest class in :data:`STATUS_BY_ERROR`, else 500."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500
