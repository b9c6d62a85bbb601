"""The refusals of the minting engine, each with the seed's stable code."""

from __future__ import annotations

from core.errors import ConflictError, InputError, NotFound


class UserNotFound(NotFound):
    """No user has this wallet (a claim needs a known trader)."""

    code = "USER_NOT_FOUND"


class QualificationNotMet(InputError):
    """The user's volume or badges are below what the level needs."""

    code = "QUALIFICATION_NOT_MET"


class NftAlreadyOwned(ConflictError):
    """The user already holds (or is being minted) a tier NFT."""

    code = "NFT_ALREADY_OWNED"


class OperationNotFound(NotFound):
    code = "OPERATION_NOT_FOUND"


class OperationStateConflict(ConflictError):
    """An operator action does not fit the operation's state (e.g. cancel a confirmed mint)."""

    code = "OPERATION_STATE_CONFLICT"
