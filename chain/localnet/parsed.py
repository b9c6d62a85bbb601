"""``jsonParsed`` instructions: System, SPL Token / Token-2022 (base instructions), Associated
Token Account and Memo, in a node's shapes. Token and ATA instructions are read by the
project's codecs (``chain.codecs``), so the JSON says what the indexer decodes. Anything else
is "partially decoded" (program id, account list, base58 data), which is also what a node
returns for programs it cannot parse."""

from __future__ import annotations

from typing import Any, Final

from solders.pubkey import Pubkey

from chain.codecs import ata, spl_token, token2022
from chain.codecs.spl_token import AccountState, TokenInstructionType
from chain.localnet.encoding import b58encode, ui_token_amount
from chain.programs import (
    ASSOCIATED_TOKEN_PROGRAM,
    MEMO_PROGRAM,
    MEMO_V1_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
)
from core.errors import CodecError

_AUTHORITY_TYPES = ["mintTokens", "freezeAccount", "accountOwner", "closeAccount"]
# Token-2022 only; the shared codec stops its instruction enum at the classic set.
_INITIALIZE_IMMUTABLE_OWNER = 22

Parsed = tuple[str, Any] | None


def parse_instruction(
    keys: list[Pubkey], program_index: int, accounts: bytes, data: bytes, stack_height: int | None
) -> dict[str, Any]:
    program = keys[program_index]
    resolved = [keys[a] for a in accounts]
    names = [str(k) for k in resolved]
    parsed: Parsed = None
    try:
        if program in (MEMO_PROGRAM, MEMO_V1_PROGRAM):
            parsed = ("spl-memo", data.decode("utf-8", "replace"))
        elif program == SYSTEM_PROGRAM:
            parsed = _system(names, data)
        elif program in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM):
            parsed = _token(names, resolved, program, data)
        elif program == ASSOCIATED_TOKEN_PROGRAM:
            parsed = _associated(names, resolved, data)
    except (CodecError, IndexError, ValueError):
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


def _token(names: list[str], accounts: list[Pubkey], program: Pubkey, data: bytes) -> Parsed:
    """A token instruction as the codec decodes it (the program's own reading of the bytes);
    None for the ones a node's parser would not know either."""
    ix: object = (
        spl_token.decode(program, accounts, data)
        if program == TOKEN_PROGRAM
        else token2022.decode(accounts, data)
    )
    info = _token_info(names, ix)
    if info is None:
        return None
    return ("spl-token" if program == TOKEN_PROGRAM else "spl-token-2022"), info


def _token_info(names: list[str], ix: object) -> dict[str, Any] | None:
    match ix:
        case spl_token.Transfer():
            return _amount("transfer", ix.amount, names, ["source", "destination", "authority"])
        case spl_token.MintTo():
            return _amount("mintTo", ix.amount, names, ["mint", "account", "mintAuthority"])
        case spl_token.Burn():
            return _amount("burn", ix.amount, names, ["account", "mint", "authority"])
        case spl_token.TransferChecked():
            fields = ["source", "mint", "destination", "authority"]
            return _checked("transferChecked", ix.amount, ix.decimals, names, fields)
        case spl_token.MintToChecked():
            fields = ["mint", "account", "mintAuthority"]
            return _checked("mintToChecked", ix.amount, ix.decimals, names, fields)
        case spl_token.BurnChecked():
            fields = ["account", "mint", "authority"]
            return _checked("burnChecked", ix.amount, ix.decimals, names, fields)
        case spl_token.CloseAccount():
            return _typed(
                "closeAccount",
                {"account": names[0], "destination": names[1], "owner": names[2]},
            )
        case spl_token.SetAuthority():
            return _set_authority(names, ix)
        case spl_token.InitializeMint2():
            info: dict[str, Any] = {
                "mint": names[0],
                "decimals": ix.decimals,
                "mintAuthority": str(ix.mint_authority),
            }
            if ix.freeze_authority is not None:
                info["freezeAuthority"] = str(ix.freeze_authority)
            return _typed("initializeMint2", info)
        case spl_token.OtherTokenInstruction(kind=TokenInstructionType.INITIALIZE_ACCOUNT3):
            # The codec does not model InitializeAccount3: its one field is the owner.
            owner = Pubkey.from_bytes(ix.data[1:33])
            return _typed(
                "initializeAccount3", {"account": names[0], "mint": names[1], "owner": str(owner)}
            )
        case spl_token.OtherTokenInstruction(kind=_INITIALIZE_IMMUTABLE_OWNER):
            return _typed("initializeImmutableOwner", {"account": names[0]})
    return None


def _amount(kind: str, amount: int, names: list[str], fields: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = dict(zip(fields, names, strict=False))
    info["amount"] = str(amount)
    return _typed(kind, info)


def _checked(
    kind: str, amount: int, decimals: int, names: list[str], fields: list[str]
) -> dict[str, Any]:
    info: dict[str, Any] = dict(zip(fields, names, strict=False))
    info["tokenAmount"] = ui_token_amount(amount, decimals)
    return _typed(kind, info)


def _set_authority(names: list[str], ix: spl_token.SetAuthority) -> dict[str, Any]:
    code = ix.authority_type
    kind = _AUTHORITY_TYPES[code] if code < len(_AUTHORITY_TYPES) else str(code)
    target = "mint" if kind in ("mintTokens", "freezeAccount") else "account"
    new = str(ix.new_authority) if ix.new_authority is not None else None
    return _typed(
        "setAuthority",
        {target: names[0], "authorityType": kind, "newAuthority": new, "authority": names[1]},
    )


def _associated(names: list[str], accounts: list[Pubkey], data: bytes) -> Parsed:
    ix = ata.decode(accounts, data)
    if not isinstance(ix, ata.CreateAssociatedTokenAccount):
        return None
    info = {
        "source": str(ix.payer),
        "account": str(ix.account),
        "wallet": str(ix.owner),
        "mint": str(ix.mint),
        "systemProgram": names[4],
        "tokenProgram": str(ix.token_program),
    }
    return "spl-associated-token-account", _typed(
        "createIdempotent" if ix.idempotent else "create", info
    )


# ---------------------------------------------------------------------- Token-2022 extensions


def token_extensions(owner: Pubkey, data: bytes, *, mint: bool) -> list[dict[str, Any]]:
    """The ``extensions`` list of a parsed Token-2022 mint or token account, in agave's
    ``UiExtension`` shape (``{"extension": name, "state": {...}}``), decoded by
    ``chain.codecs.token2022``. Empty for the classic program and unextended accounts; an
    account whose extensions do not decode gets none, as its base was already parsed."""
    if owner != TOKEN_2022_PROGRAM or len(data) <= token2022.ACCOUNT_TYPE_OFFSET:
        return []
    try:
        decoded = token2022.decode_mint(data) if mint else token2022.decode_account(data)
    except CodecError:
        return []
    return [_extension_json(ext) for ext in decoded.extensions]


def _key(value: Pubkey | None) -> str | None:
    return str(value) if value is not None else None


# agave's UiAccountState names.
_ACCOUNT_STATES: Final = {
    AccountState.UNINITIALIZED: "uninitialized",
    AccountState.INITIALIZED: "initialized",
    AccountState.FROZEN: "frozen",
}


def _extension_json(ext: token2022.Extension) -> dict[str, Any]:
    match ext:
        case token2022.ImmutableOwner():
            return {"extension": "immutableOwner"}
        case token2022.MetadataPointer():
            state: dict[str, Any] = {
                "authority": _key(ext.authority),
                "metadataAddress": _key(ext.metadata_address),
            }
            return {"extension": "metadataPointer", "state": state}
        case token2022.GroupPointer():
            state = {"authority": _key(ext.authority), "groupAddress": _key(ext.group_address)}
            return {"extension": "groupPointer", "state": state}
        case token2022.GroupMemberPointer():
            state = {"authority": _key(ext.authority), "memberAddress": _key(ext.member_address)}
            return {"extension": "groupMemberPointer", "state": state}
        case token2022.TokenMetadata():
            state = {
                "updateAuthority": _key(ext.update_authority),
                "mint": str(ext.mint),
                "name": ext.name,
                "symbol": ext.symbol,
                "uri": ext.uri,
                "additionalMetadata": [[k, v] for k, v in ext.additional_metadata],
            }
            return {"extension": "tokenMetadata", "state": state}
        case token2022.TokenGroup():
            state = {
                "updateAuthority": _key(ext.update_authority),
                "mint": str(ext.mint),
                "size": ext.size,
                "maxSize": ext.max_size,
            }
            return {"extension": "tokenGroup", "state": state}
        case token2022.TokenGroupMember():
            state = {
                "mint": str(ext.mint),
                "group": str(ext.group),
                "memberNumber": ext.member_number,
            }
            return {"extension": "tokenGroupMember", "state": state}
        case token2022.MintCloseAuthority():
            state = {"closeAuthority": _key(ext.close_authority)}
            return {"extension": "mintCloseAuthority", "state": state}
        case token2022.PermanentDelegate():
            return {"extension": "permanentDelegate", "state": {"delegate": _key(ext.delegate)}}
        case token2022.TransferHook():
            state = {"authority": _key(ext.authority), "programId": _key(ext.program_id)}
            return {"extension": "transferHook", "state": state}
        case token2022.NonTransferable():
            return {"extension": "nonTransferable"}
        case token2022.DefaultAccountState():
            state = {"accountState": _ACCOUNT_STATES[ext.state]}
            return {"extension": "defaultAccountState", "state": state}
    # Extensions the codec does not model yet: a node names each; we say we could not parse it.
    return {"extension": "unparsableExtension"}
