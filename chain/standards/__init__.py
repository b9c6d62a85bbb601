"""Asset standards behind one interface; ``get_standard(name)`` picks one by its name."""

from __future__ import annotations

from chain.standards.base import (
    AssetStandard,
    CollectionRequest,
    MintRequest,
    Plan,
    RentFn,
    TransactionTooLarge,
    default_rent,
)
from core.errors import ConfigError

__all__ = [
    "AssetStandard",
    "CollectionRequest",
    "MintRequest",
    "Plan",
    "TransactionTooLarge",
    "get_standard",
]


def get_standard(name: str, *, rent: RentFn = default_rent) -> AssetStandard:
    """The standard called ``name`` (``token2022`` or ``metaplex``)."""
    # Imported here so that importing the interface does not import every implementation.
    from chain.standards.metaplex import MetaplexStandard
    from chain.standards.token2022 import Token2022Standard

    known: dict[str, type[AssetStandard]] = {
        Token2022Standard.name: Token2022Standard,
        MetaplexStandard.name: MetaplexStandard,
    }
    try:
        cls = known[name.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown asset standard {name!r}: use one of {', '.join(sorted(known))}",
            details={"standard": name, "known": sorted(known)},
        ) from None
    return cls(rent)
