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


class NftNotFound(NotFound):
    """No such NFT for this user or wallet (none held, or not in the state the action needs)."""

    code = "NFT_NOT_FOUND"


class NftAlreadyActive(ConflictError):
    code = "NFT_ALREADY_ACTIVE"


class ActivationNotFound(NotFound):
    """The chain does not (yet) show the activation transaction at ``confirmed``."""

    code = "ACTIVATION_NOT_FOUND"


class ActivationInvalid(InputError):
    """The transaction is not an activation of this NFT by its current owner."""

    code = "ACTIVATION_INVALID"


class MaxLevelReached(ConflictError):
    """The user's tier NFT is the top tier: there is nothing to upgrade to."""

    code = "MAX_LEVEL_REACHED"


class UpgradeInProgress(ConflictError):
    """The user's upgrade was signed and sent: it lands or expires before another is asked."""

    code = "UPGRADE_IN_PROGRESS"


class UpgradeNotFound(NotFound):
    code = "UPGRADE_NOT_FOUND"


class UpgradeMismatch(InputError):
    """The transaction posted back is not the one the backend signed, or lacks a signature."""

    code = "UPGRADE_TRANSACTION_MISMATCH"


class UpgradeClosed(ConflictError):
    """The upgrade request expired, failed or was confirmed: ask again for a new one."""

    code = "UPGRADE_CLOSED"
