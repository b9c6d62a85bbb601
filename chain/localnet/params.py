"""Parsing of JSON-RPC parameters the way a node does: positional, null-tolerant configs."""

from __future__ import annotations

from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature

from chain.localnet.errors import invalid_params
from chain.localnet.runtime import Commitment

COMMITMENT_ALIASES = {
    "processed": Commitment.PROCESSED,
    "recent": Commitment.PROCESSED,
    "confirmed": Commitment.CONFIRMED,
    "single": Commitment.CONFIRMED,
    "singleGossip": Commitment.CONFIRMED,
    "finalized": Commitment.FINALIZED,
    "max": Commitment.FINALIZED,
    "root": Commitment.FINALIZED,
}


def required(params: list[Any], index: int, kind: type | tuple[type, ...]) -> Any:
    if len(params) <= index or params[index] is None:
        raise invalid_params(f"Invalid params: missing parameter {index}")
    value = params[index]
    if kind is int and isinstance(value, bool):  # JSON true is not a number
        raise invalid_params(f"Invalid params: parameter {index} has the wrong type")
    if not isinstance(value, kind):
        raise invalid_params(f"Invalid params: parameter {index} has the wrong type")
    return value


def config(params: list[Any], index: int, *, string_key: str | None = None) -> dict[str, Any]:
    """The config object at ``index`` with its null fields dropped (solana-py sends them)."""
    if len(params) <= index or params[index] is None:
        return {}
    value = params[index]
    if isinstance(value, str) and string_key is not None:
        return {string_key: value}  # legacy positional form, e.g. getTransaction(sig, "json")
    if not isinstance(value, dict):
        raise invalid_params("Invalid params: expected a config object")
    return {k: v for k, v in value.items() if v is not None}


def commitment(config: dict[str, Any], default: Commitment) -> Commitment:
    text = config.get("commitment")
    if text is None:
        return default
    try:
        return COMMITMENT_ALIASES[text]
    except (KeyError, TypeError):
        raise invalid_params(f"Invalid params: unknown variant `{text}`") from None


def pubkey(text: Any) -> Pubkey:
    if not isinstance(text, str):
        raise invalid_params("Invalid param: Invalid")
    try:
        return Pubkey.from_string(text)
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None


def signature(text: Any) -> Signature:
    if not isinstance(text, str):
        raise invalid_params("Invalid param: Invalid")
    try:
        return Signature.from_string(text)
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None
