"""Parsing of JSON-RPC parameters the way a node does: positional, null-tolerant configs."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature

from chain.localnet.errors import RpcError, invalid_params
from chain.localnet.runtime import CommitmentLevel
from chain.localnet.tokens import parse_token_account
from chain.pubkeys import decode_base58
from chain.rpc.protocol import INVALID_PARAMS, MAX_ACCOUNT_FILTERS, MAX_MEMCMP_BYTES

COMMITMENT_ALIASES = {
    "processed": CommitmentLevel.PROCESSED,
    "recent": CommitmentLevel.PROCESSED,
    "confirmed": CommitmentLevel.CONFIRMED,
    "single": CommitmentLevel.CONFIRMED,
    "singleGossip": CommitmentLevel.CONFIRMED,
    "finalized": CommitmentLevel.FINALIZED,
    "max": CommitmentLevel.FINALIZED,
    "root": CommitmentLevel.FINALIZED,
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


def commitment(config: dict[str, Any], default: CommitmentLevel) -> CommitmentLevel:
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


def account_filters(raw: Any) -> list[Callable[[Account], bool]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_params("Invalid params: filters must be an array")
    if len(raw) > MAX_ACCOUNT_FILTERS:
        raise RpcError(INVALID_PARAMS, f"Too many filters provided; max {MAX_ACCOUNT_FILTERS}")
    out: list[Callable[[Account], bool]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid_params("Invalid params: bad filter")
        if "dataSize" in item:
            size = int(item["dataSize"])
            out.append(lambda a, size=size: len(a.data) == size)  # type: ignore[misc]
        elif "memcmp" in item:
            memcmp = item["memcmp"]
            offset = int(memcmp.get("offset", 0))
            wanted = _memcmp_bytes(memcmp.get("bytes"), memcmp.get("encoding") or "base58")
            out.append(
                lambda a, o=offset, w=wanted: bytes(a.data)[o : o + len(w)] == w  # type: ignore[misc]
            )
        elif "tokenAccountState" in item:
            out.append(lambda a: parse_token_account(a) is not None)
        else:
            raise invalid_params("Invalid params: unknown filter")
    return out


def _memcmp_bytes(value: Any, encoding: str) -> bytes:
    try:
        if isinstance(value, list):
            data = bytes(value)
        elif encoding == "base64":
            data = base64.b64decode(value, validate=True)
        elif encoding == "base58":
            decoded = decode_base58(value) if value != "" else b""
            if decoded is None:
                raise ValueError("not base58")
            data = decoded
        else:
            raise ValueError(encoding)
    except (ValueError, TypeError, binascii.Error):
        raise invalid_params(
            "Invalid param: encoded binary data should be base58 or base64"
        ) from None
    if len(data) > MAX_MEMCMP_BYTES:
        raise invalid_params("Invalid param: memcmp data too large")
    return data
