"""``jsonParsed`` instructions: System, SPL Token / Token-2022 (base instructions), Associated
Token Account and Memo, in a node's shapes. Anything else is "partially decoded" (program id,
account list, base58 data), which is also what a node returns for programs it cannot parse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM

from chain.localnet.encoding import b58encode, ui_token_amount
from chain.programs import (
    ASSOCIATED_TOKEN_PROGRAM,
    MEMO_PROGRAM,
    MEMO_V1_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
)

_AUTHORITY_TYPES = ["mintTokens", "freezeAccount", "accountOwner", "closeAccount"]

Parsed = tuple[str, Any] | None


def parse_instruction(
    keys: list[Pubkey], program_index: int, accounts: bytes, data: bytes, stack_height: int | None
) -> dict[str, Any]:
    program = keys[program_index]
    names = [str(keys[a]) for a in accounts]
    parsed: Parsed = None
    try:
        if program in (MEMO_PROGRAM, MEMO_V1_PROGRAM):
            parsed = ("spl-memo", data.decode("utf-8", "replace"))
        elif program == SYSTEM_PROGRAM:
            parsed = _system(names, data)
        elif program in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM):
            info = _token(names, data)
            name = "spl-token" if program == TOKEN_PROGRAM else "spl-token-2022"
            parsed = (name, info) if info is not None else None
        elif program == ASSOCIATED_TOKEN_PROGRAM:
            parsed = _associated(names, data)
    except (IndexError, ValueError):
        parsed = None  # malformed for its program: a node falls back the same way
    if parsed is None:
        return {
            "programId": str(program),
            "accounts": names,
            "data": b58encode(data),
            "stackHeight": stack_height,
        }
    return {
        "program": parsed[0],
        "programId": str(program),
        "parsed": parsed[1],
        "stackHeight": stack_height,
    }


def _u64(data: bytes, offset: int) -> int:
    if len(data) < offset + 8:
        raise ValueError("short instruction data")
    return int.from_bytes(data[offset : offset + 8], "little")


def _typed(kind: str, info: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "info": info}


def _system(a: list[str], data: bytes) -> Parsed:
    tag = int.from_bytes(data[:4], "little")
    if tag == 0:
        info = {
            "source": a[0],
            "newAccount": a[1],
            "lamports": _u64(data, 4),
            "space": _u64(data, 12),
            "owner": str(Pubkey.from_bytes(data[20:52])),
        }
        return "system", _typed("createAccount", info)
    if tag == 1:
        return "system", _typed(
            "assign", {"account": a[0], "owner": str(Pubkey.from_bytes(data[4:36]))}
        )
    if tag == 2:
        info = {"source": a[0], "destination": a[1], "lamports": _u64(data, 4)}
        return "system", _typed("transfer", info)
    if tag == 8:
        return "system", _typed("allocate", {"account": a[0], "space": _u64(data, 4)})
    return None


def _coption(data: bytes, offset: int) -> str | None:
    if data[offset] == 0:
        return None
    return str(Pubkey.from_bytes(data[offset + 1 : offset + 33]))


def _token(a: list[str], data: bytes) -> dict[str, Any] | None:
    handler = _TOKEN_PARSERS.get(data[0])
    return handler(a, data) if handler is not None else None


def _amount(a: list[str], data: bytes, kind: str, fields: list[str]) -> dict[str, Any]:
    info = dict(zip(fields, a, strict=False))
    info["amount"] = str(_u64(data, 1))
    return _typed(kind, info)


def _checked(a: list[str], data: bytes, kind: str, fields: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = dict(zip(fields, a, strict=False))
    info["tokenAmount"] = ui_token_amount(_u64(data, 1), data[9])
    return _typed(kind, info)


def _set_authority(a: list[str], data: bytes) -> dict[str, Any]:
    kind = _AUTHORITY_TYPES[data[1]] if data[1] < len(_AUTHORITY_TYPES) else str(data[1])
    target = "mint" if kind in ("mintTokens", "freezeAccount") else "account"
    return _typed(
        "setAuthority",
        {target: a[0], "authorityType": kind, "newAuthority": _coption(data, 2), "authority": a[1]},
    )


def _initialize_mint2(a: list[str], data: bytes) -> dict[str, Any]:
    info: dict[str, Any] = {
        "mint": a[0],
        "decimals": data[1],
        "mintAuthority": str(Pubkey.from_bytes(data[2:34])),
    }
    freeze = _coption(data, 34) if len(data) > 34 else None
    if freeze is not None:
        info["freezeAuthority"] = freeze
    return _typed("initializeMint2", info)


_TOKEN_PARSERS: dict[int, Callable[[list[str], bytes], dict[str, Any]]] = {
    3: lambda a, d: _amount(a, d, "transfer", ["source", "destination", "authority"]),
    6: _set_authority,
    7: lambda a, d: _amount(a, d, "mintTo", ["mint", "account", "mintAuthority"]),
    8: lambda a, d: _amount(a, d, "burn", ["account", "mint", "authority"]),
    9: lambda a, d: _typed("closeAccount", {"account": a[0], "destination": a[1], "owner": a[2]}),
    12: lambda a, d: _checked(
        a, d, "transferChecked", ["source", "mint", "destination", "authority"]
    ),
    14: lambda a, d: _checked(a, d, "mintToChecked", ["mint", "account", "mintAuthority"]),
    15: lambda a, d: _checked(a, d, "burnChecked", ["account", "mint", "authority"]),
    18: lambda a, d: _typed(
        "initializeAccount3",
        {"account": a[0], "mint": a[1], "owner": str(Pubkey.from_bytes(d[1:33]))},
    ),
    20: _initialize_mint2,
    22: lambda a, d: _typed("initializeImmutableOwner", {"account": a[0]}),
}


def _associated(a: list[str], data: bytes) -> Parsed:
    kinds = {b"": "create", b"\x00": "create", b"\x01": "createIdempotent"}
    kind = kinds.get(data)
    if kind is None:
        return None
    fields = ["source", "account", "wallet", "mint", "systemProgram", "tokenProgram"]
    return "spl-associated-token-account", _typed(kind, dict(zip(fields, a, strict=False)))
