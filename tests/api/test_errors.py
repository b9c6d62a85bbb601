"""api.errors: statuses looked up along the class hierarchy."""

from __future__ import annotations

import pytest

from api.errors import STATUS_BY_ERROR, status_for
from chain.keys import KeypairError, KeypairExists
from core.errors import (
    AIW3Error,
    ConflictError,
    InvalidPublicKey,
    NotFound,
    RetryableChainError,
    StoreConflict,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidPublicKey("bad"), 400),  # via InputError
        (NotFound("gone"), 404),
        (KeypairExists("exists"), 409),  # a chain subclass inherits ConflictError's status
        (StoreConflict("dup", constraint="uq_x"), 409),  # ConflictError before StoreError
        (RetryableChainError("busy"), 503),
        (KeypairError("bad key"), 500),  # a ConfigError is ours, not the caller's
        (ValueError("not ours"), 500),
    ],
)
def test_most_specific_class_wins(error: BaseException, status: int) -> None:
    assert status_for(error) == status


def test_every_listed_class_is_an_aiw3_error() -> None:
    assert all(issubclass(cls, AIW3Error) for cls in STATUS_BY_ERROR)
    assert STATUS_BY_ERROR[ConflictError] == 409
