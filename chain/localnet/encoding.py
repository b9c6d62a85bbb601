"""Wire encodings a Solana node uses: base58, account objects, error texts, token amounts."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_metadata import InnerInstruction
from solders.transaction_status import TransactionErrorType

from chain.localnet.errors import RpcError, invalid_params
from chain.rpc.protocol import INVALID_REQUEST, MAX_BASE58_ACCOUNT_BYTES

_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# rentEpoch of every rent-exempt account on a current cluster.
RENT_EPOCH_EXEMPT = 2**64 - 1


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = bytearray()
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return (b"1" * pad + bytes(reversed(out))).decode()


def encode_account(
    account: Account, encoding: str, data_slice: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``UiAccount`` as getAccountInfo returns it. ``jsonParsed`` falls back to base64 here;
    callers that can parse (token accounts) do so before calling this."""
    raw = bytes(account.data)
    space = len(raw)
    if data_slice is not None:
        offset = int(data_slice.get("offset") or 0)
        length = int(data_slice.get("length") or 0)
        raw = raw[offset : offset + length]
    data: Any
    if encoding == "binary":
        _check_base58_size(raw)
        data = b58encode(raw)  # legacy encoding: a bare string
    elif encoding == "base58":
        _check_base58_size(raw)
        data = [b58encode(raw), "base58"]
    elif encoding in ("base64", "jsonParsed"):
        data = [base64.b64encode(raw).decode(), "base64"]
    elif encoding == "base64+zstd":
        raise invalid_params("Invalid params: base64+zstd encoding is not supported by localnet")
    else:
        raise invalid_params(f"Invalid params: unknown variant `{encoding}`")
    return {
        "lamports": account.lamports,
        "owner": str(account.owner),
        "data": data,
        "executable": account.executable,
        "rentEpoch": RENT_EPOCH_EXEMPT,
        "space": space,
    }


def _check_base58_size(raw: bytes) -> None:
    if len(raw) > MAX_BASE58_ACCOUNT_BYTES:
        raise RpcError(
            INVALID_REQUEST,
            "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 "
            "encoding.",
        )


def error_json(err: TransactionErrorType) -> Any:
    """The serde JSON form of a solders ``TransactionError`` (e.g. ``{"InstructionError":
    [0, {"Custom": 1}]}`` or ``"AccountNotFound"``)."""
    return json.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


_FIXED_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "AddressLookupTableNotFound": ("Transaction loads an address table account that doesn't exist"),
}


def describe_error(err: Any) -> str:
    """The text a node prints for a transaction error (``Display`` of ``TransactionError``)."""
    if isinstance(err, str):
        return _FIXED_TEXT.get(err, _words(err))
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        if isinstance(inner, dict) and "Custom" in inner:
            text = f"custom program error: {int(inner['Custom']):#x}"
        elif isinstance(inner, str):
            text = _words(inner)
        else:
            text = json.dumps(inner)
        return f"Error processing Instruction {index}: {text}"
    if isinstance(err, dict) and "InsufficientFundsForRent" in err:
        index = err["InsufficientFundsForRent"].get("account_index")
        return f"Transaction results in an account ({index}) with insufficient funds for rent"
    return json.dumps(err)


def _words(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    """``{amount, decimals, uiAmount, uiAmountString}`` as a node renders a token amount."""
    scaled = Decimal(amount).scaleb(-decimals)
    text = format(scaled.normalize(), "f") if amount else "0"
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": float(scaled),
        "uiAmountString": text,
    }


def inner_instructions_json(
    inner: list[list[InnerInstruction]],
    parse: Callable[[int, bytes, bytes, int | None], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for index, instructions in enumerate(inner):
        if not instructions:
            continue
        rendered = []
        for inner_ix in instructions:
            ix = inner_ix.instruction()
            if parse is not None:
                rendered.append(
                    parse(
                        ix.program_id_index,
                        bytes(ix.accounts),
                        bytes(ix.data),
                        inner_ix.stack_height(),
                    )
                )
            else:
                rendered.append(
                    {
                        "programIdIndex": ix.program_id_index,
                        "accounts": list(bytes(ix.accounts)),
                        "data": b58encode(bytes(ix.data)),
                        "stackHeight": inner_ix.stack_height(),
                    }
                )
        out.append({"index": index, "instructions": rendered})
    return out


def return_data_json(data: tuple[Pubkey, bytes] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {"programId": str(data[0]), "data": [base64.b64encode(data[1]).decode(), "base64"]}
