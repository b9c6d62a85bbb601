"""JSON renderings of landed transactions: getTransaction, statuses, token balances."""

from __future__ import annotations

import base64
from functools import partial
from typing import Any

from solders.message import Message, MessageV0

from chain.localnet.encoding import (
    b58encode,
    inner_instructions_json,
    return_data_json,
    ui_token_amount,
)
from chain.localnet.parsed import parse_instruction
from chain.localnet.runtime import (
    LocalChain,
    TokenBalance,
    TxRecord,
    message_of,
)


def transaction_json(
    chain: LocalChain, record: TxRecord, encoding: str, with_version: bool
) -> dict[str, Any]:
    """The body of a getTransaction reply."""
    tx: Any
    if encoding == "base64":
        tx = [base64.b64encode(record.raw).decode(), "base64"]
    elif encoding == "base58":
        tx = [b58encode(record.raw), "base58"]
    else:
        tx = {
            "signatures": [str(s) for s in record.tx.signatures],
            "message": message_json(record, parsed=encoding == "jsonParsed"),
        }
    out: dict[str, Any] = {
        "slot": record.slot,
        "blockTime": record.block.block_time,
        "transaction": tx,
        "meta": meta_json(record, parsed=encoding == "jsonParsed"),
    }
    if with_version:
        out["version"] = 0 if isinstance(record.tx.message, MessageV0) else "legacy"
    return out


def message_json(record: TxRecord, *, parsed: bool) -> dict[str, Any]:
    msg = message_of(record.tx)
    keys = record.account_keys
    out: dict[str, Any]
    if parsed:
        static = len(msg.account_keys)
        loaded_w = set(record.loaded_writable)
        out = {
            "accountKeys": [
                {
                    "pubkey": str(key),
                    "writable": _is_writable(msg, i) if i < static else key in loaded_w,
                    "signer": i < msg.header.num_required_signatures,
                    "source": "transaction" if i < static else "lookupTable",
                }
                for i, key in enumerate(keys)
            ],
            "recentBlockhash": str(msg.recent_blockhash),
            "instructions": [
                parse_instruction(
                    keys, ix.program_id_index, bytes(ix.accounts), bytes(ix.data), None
                )
                for ix in msg.instructions
            ],
        }
    else:
        header = msg.header
        out = {
            "accountKeys": [str(k) for k in msg.account_keys],
            "header": {
                "numRequiredSignatures": header.num_required_signatures,
                "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            },
            "recentBlockhash": str(msg.recent_blockhash),
            "instructions": [
                {
                    "programIdIndex": ix.program_id_index,
                    "accounts": list(bytes(ix.accounts)),
                    "data": b58encode(bytes(ix.data)),
                    "stackHeight": None,
                }
                for ix in msg.instructions
            ],
        }
    if isinstance(msg, MessageV0):
        out["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "writableIndexes": list(bytes(lookup.writable_indexes)),
                "readonlyIndexes": list(bytes(lookup.readonly_indexes)),
            }
            for lookup in msg.address_table_lookups
        ]
    return out


def meta_json(record: TxRecord, *, parsed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "fee": record.fee,
        "preBalances": record.pre_balances,
        "postBalances": record.post_balances,
        "innerInstructions": inner_instructions_json(
            record.inner_instructions,
            partial(parse_instruction, record.account_keys) if parsed else None,
        ),
        "logMessages": record.logs,
        "preTokenBalances": [token_balance_json(b) for b in record.pre_token_balances],
        "postTokenBalances": [token_balance_json(b) for b in record.post_token_balances],
        "rewards": [],
        "loadedAddresses": {
            "writable": [str(k) for k in record.loaded_writable],
            "readonly": [str(k) for k in record.loaded_readonly],
        },
        "computeUnitsConsumed": record.compute_units,
    }
    if record.return_data is not None:
        out["returnData"] = return_data_json(record.return_data)
    return out


def token_balance_json(balance: TokenBalance) -> dict[str, Any]:
    token = balance.token
    return {
        "accountIndex": balance.account_index,
        "mint": str(token.mint),
        "owner": str(token.owner),
        "programId": str(token.program),
        "uiTokenAmount": ui_token_amount(token.amount, balance.decimals),
    }


def status_json(chain: LocalChain, record: TxRecord) -> dict[str, Any]:
    return {
        "slot": record.slot,
        "confirmations": chain.confirmations(record),
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "confirmationStatus": str(chain.commitment_of(record)),
    }


def _is_writable(msg: Message | MessageV0, i: int) -> bool:
    header = msg.header
    signed = header.num_required_signatures
    if i < signed:
        return i < signed - header.num_readonly_signed_accounts
    return i < len(msg.account_keys) - header.num_readonly_unsigned_accounts
