"""The HTTP JSON-RPC methods, with a real node's parameters, defaults, limits and errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.message import Message, MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey

from chain.codecs.spl_token import AccountState
from chain.localnet import params as params_mod
from chain.localnet.encoding import encode_account, ui_token_amount
from chain.localnet.errors import RpcError, invalid_params
from chain.localnet.parsed import token_extensions
from chain.localnet.runtime import Block, CommitmentLevel, LocalChain, TxRecord, decode_transaction
from chain.localnet.tokens import parse_mint, parse_token_account
from chain.localnet.txjson import status_json, transaction_json
from chain.programs import (
    COMPUTE_BUDGET_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
    TOKEN_PROGRAMS,
)
from chain.pubkeys import decode_base58
from chain.rpc.protocol import (
    BLOCK_NOT_AVAILABLE,
    LONG_TERM_STORAGE_SLOT_SKIPPED,
    MAX_BASE58_TRANSACTION,
    MAX_BASE64_TRANSACTION,
    MAX_MULTIPLE_ACCOUNTS,
    MAX_SIGNATURE_STATUSES,
    MAX_SIGNATURES_FOR_ADDRESS,
    MAX_TOKEN_LARGEST_ACCOUNTS,
    METHOD_NOT_FOUND,
    MIN_CONTEXT_SLOT_NOT_REACHED,
    PACKET_DATA_SIZE,
    SLOT_SKIPPED,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
)

SOLANA_CORE_VERSION = "2.2.16"
FEATURE_SET = 3294202862
_DEFAULT_INSTRUCTION_CU = 200_000
_MAX_CU = 1_400_000
_LAMPORTS_PER_SIGNATURE = 5000

Handler = Callable[[list[Any]], Any]


class RpcMethods:
    """Dispatches one JSON-RPC call to the chain. Stateless apart from the chain itself."""

    def __init__(self, chain: LocalChain, extra: dict[str, Handler] | None = None) -> None:
        self.chain = chain
        self._table: dict[str, Handler] = {
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getProgramAccounts": self.get_program_accounts,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getTokenLargestAccounts": self.get_token_largest_accounts,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenSupply": self.get_token_supply,
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_block_height,
            "getBlock": self.get_block,
            "getBlockTime": self.get_block_time,
            "getEpochInfo": self.get_epoch_info,
            "getBalance": self.get_balance,
            "requestAirdrop": self.request_airdrop,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance,
            "getFeeForMessage": self.get_fee_for_message,
            "getHealth": lambda params: "ok",
            "getVersion": lambda params: {
                "solana-core": SOLANA_CORE_VERSION,
                "feature-set": FEATURE_SET,
            },
            "getGenesisHash": lambda params: str(self.chain.block_by_slot(0).blockhash),  # type: ignore[union-attr]
            "localnet_setAccount": self.set_account,
            "localnet_dropSlots": self.drop_slots,
            # Methods of the transport around the chain (e.g. localnet_dropConnections).
            **(extra or {}),
        }

    def call(self, method: str, params: Any) -> Any:
        handler = self._table.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise invalid_params("Invalid params: expected an array of parameters")
        return handler(params)

    # ------------------------------------------------------------------ helpers

    def _context(self, block: Block) -> dict[str, Any]:
        return {"slot": block.slot, "apiVersion": SOLANA_CORE_VERSION}

    def _wrap(self, block: Block, value: Any) -> dict[str, Any]:
        return {"context": self._context(block), "value": value}

    def _block(
        self, config: dict[str, Any], default: CommitmentLevel = CommitmentLevel.FINALIZED
    ) -> Block:
        """The block a read at the config's commitment sees; checks minContextSlot."""
        block = self.chain.block_at(params_mod.commitment(config, default))
        wanted = config.get("minContextSlot")
        if wanted is not None and block.slot < int(wanted):
            raise RpcError(
                MIN_CONTEXT_SLOT_NOT_REACHED,
                "Minimum context slot has not been reached",
                {"contextSlot": block.slot},
            )
        return block

    def _account_json(
        self, account: Account | None, config: dict[str, Any], default_encoding: str = "binary"
    ) -> dict[str, Any] | None:
        if account is None:
            return None
        encoding = config.get("encoding", default_encoding)
        if encoding == "jsonParsed":
            parsed = _parsed_token_data(self.chain, account)
            if parsed is not None:
                out = encode_account(account, "base64")
                out["data"] = parsed
                return out
        return encode_account(account, encoding, config.get("dataSlice"))

    # ------------------------------------------------------------------ blockhashes, slots

    def get_latest_blockhash(self, params: list[Any]) -> Any:
        block = self._block(params_mod.config(params, 0))
        return self._wrap(
            block,
            {
                "blockhash": str(block.blockhash),
                "lastValidBlockHeight": self.chain.last_valid_block_height(block),
            },
        )

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        config = params_mod.config(params, 1)
        block = self._block(config)
        try:
            blockhash = Hash.from_string(params_mod.required(params, 0, str))
        except ValueError:
            raise invalid_params("Invalid params: invalid blockhash") from None
        return self._wrap(
            block,
            self.chain.blockhash_valid(
                blockhash, params_mod.commitment(config, CommitmentLevel.FINALIZED)
            ),
        )

    def get_slot(self, params: list[Any]) -> Any:
        return self._block(params_mod.config(params, 0)).slot

    def get_block_height(self, params: list[Any]) -> Any:
        return self._block(params_mod.config(params, 0)).height

    def get_epoch_info(self, params: list[Any]) -> Any:
        block = self._block(params_mod.config(params, 0))
        return {
            "absoluteSlot": block.slot,
            "blockHeight": block.height,
            "epoch": 0,
            "slotIndex": block.slot,
            "slotsInEpoch": 432000,
            "transactionCount": None,
        }

    def get_block_time(self, params: list[Any]) -> Any:
        block = self.chain.block_by_slot(params_mod.required(params, 0, int))
        if block is None:
            raise RpcError(
                LONG_TERM_STORAGE_SLOT_SKIPPED,
                f"Slot {params[0]} was skipped, or missing in long-term storage",
            )
        return block.block_time

    def get_block(self, params: list[Any]) -> Any:
        slot = params_mod.required(params, 0, int)
        config = params_mod.config(params, 1, string_key="encoding")
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        if commitment is CommitmentLevel.PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        block = self.chain.block_by_slot(slot)
        if block is None or block.height > self.chain.block_at(commitment).height:
            if slot < self.chain.current.slot:
                raise RpcError(
                    SLOT_SKIPPED,
                    f"Slot {slot} was skipped, or missing due to ledger jump to recent snapshot",
                )
            raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
        encoding = config.get("encoding", "json")
        details = config.get("transactionDetails", "full")
        with_version = config.get("maxSupportedTransactionVersion") is not None
        parent = self.chain.block_by_slot(block.parent_slot)
        out: dict[str, Any] = {
            "blockHeight": block.height,
            "blockTime": block.block_time,
            "blockhash": str(block.blockhash),
            "parentSlot": block.parent_slot,
            "previousBlockhash": str(parent.blockhash if parent else block.blockhash),
            "rewards": [] if config.get("rewards", True) else None,
        }
        records = [self.chain.transaction(s, CommitmentLevel.PROCESSED) for s in block.signatures]
        if details == "signatures":
            out["signatures"] = [str(s) for s in block.signatures]
        elif details == "full":
            txs = []
            for record in records:
                if record is None:
                    continue
                self._check_version(record, with_version)
                body = transaction_json(self.chain, record, encoding, with_version)
                del body["slot"], body["blockTime"]
                txs.append(body)
            out["transactions"] = txs
        return out

    # ------------------------------------------------------------------ transactions

    def send_transaction(self, params: list[Any]) -> Any:
        config = params_mod.config(params, 1)
        raw = _decode_wire_tx(params_mod.required(params, 0, str), config.get("encoding", "base58"))
        # Preflight runs on the bank at preflightCommitment (default: the node's, finalized).
        preflight = {"commitment": config.get("preflightCommitment")}
        self._block({**preflight, "minContextSlot": config.get("minContextSlot")})
        signature = self.chain.submit(
            raw,
            skip_preflight=bool(config.get("skipPreflight", False)),
            preflight_commitment=params_mod.commitment(preflight, CommitmentLevel.FINALIZED),
        )
        return str(signature)

    def simulate_transaction(self, params: list[Any]) -> Any:
        config = params_mod.config(params, 1)
        raw = _decode_wire_tx(params_mod.required(params, 0, str), config.get("encoding", "base58"))
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        block = self._block(config, CommitmentLevel.FINALIZED)
        tx = decode_transaction(raw)
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(
                TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                "Transaction signature verification failure",
            )
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        outcome, post = self.chain.simulate(tx, replace_blockhash=replace, commitment=commitment)
        value = outcome.simulation_value()
        if not config.get("innerInstructions", False):
            value["innerInstructions"] = None
        if replace:
            value["replacementBlockhash"] = {
                "blockhash": str(block.blockhash),
                "lastValidBlockHeight": self.chain.last_valid_block_height(block),
            }
        accounts_config = config.get("accounts")
        if isinstance(accounts_config, dict):
            written = dict(post)
            encoding = accounts_config.get("encoding") or "base64"
            if encoding in ("binary", "base58"):
                raise invalid_params("base58 encoding not supported")
            value["accounts"] = [
                self._account_json(
                    written.get(key, self.chain.get_account(key)), {"encoding": encoding}
                )
                for key in (params_mod.pubkey(a) for a in accounts_config.get("addresses") or [])
            ]
        return self._wrap(block, value)

    def get_signature_statuses(self, params: list[Any]) -> Any:
        signatures = params_mod.required(params, 0, list)
        if len(signatures) > MAX_SIGNATURE_STATUSES:
            raise invalid_params(f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")
        config = params_mod.config(params, 1)
        search = bool(config.get("searchTransactionHistory", False))
        values = []
        for text in signatures:
            record = self.chain.status(params_mod.signature(text), search_history=search)
            values.append(None if record is None else status_json(self.chain, record))
        return self._wrap(self.chain.current, values)

    def get_transaction(self, params: list[Any]) -> Any:
        signature = params_mod.signature(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1, string_key="encoding")
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        if commitment is CommitmentLevel.PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        encoding = config.get("encoding", "json")
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise invalid_params(f"Invalid params: unknown variant `{encoding}`")
        record = self.chain.transaction(signature, commitment)
        if record is None:
            return None
        with_version = config.get("maxSupportedTransactionVersion") is not None
        self._check_version(record, with_version)
        return transaction_json(self.chain, record, encoding, with_version)

    @staticmethod
    def _check_version(record: TxRecord, with_version: bool) -> None:
        if not with_version and isinstance(record.tx.message, MessageV0):
            raise RpcError(
                UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. Please try "
                "the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )

    def get_signatures_for_address(self, params: list[Any]) -> Any:
        address = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        if commitment is CommitmentLevel.PROCESSED:
            raise invalid_params("Method does not support commitment below `confirmed`")
        self._block(config)
        limit = int(config.get("limit", MAX_SIGNATURES_FOR_ADDRESS))
        if limit < 1 or limit > MAX_SIGNATURES_FOR_ADDRESS:
            raise invalid_params(f"Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}")
        before = config.get("before")
        until = config.get("until")
        records = self.chain.signatures_for_address(
            address,
            commitment=commitment,
            limit=limit,
            before=params_mod.signature(before) if before is not None else None,
            until=params_mod.signature(until) if until is not None else None,
        )
        return [
            {
                "signature": str(r.signature),
                "slot": r.slot,
                "err": r.err,
                "memo": r.memo,
                "blockTime": r.block.block_time,
                "confirmationStatus": str(self.chain.commitment_of(r)),
            }
            for r in records
        ]

    def request_airdrop(self, params: list[Any]) -> Any:
        pubkey = params_mod.pubkey(params_mod.required(params, 0, str))
        lamports = params_mod.required(params, 1, int)
        if lamports <= 0:
            raise invalid_params("Invalid params: lamports must be positive")
        return str(self.chain.airdrop(pubkey, lamports))

    # ------------------------------------------------------------------ accounts

    def get_account_info(self, params: list[Any]) -> Any:
        pubkey = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        block = self._block(config)
        account = self.chain.get_account(
            pubkey, params_mod.commitment(config, CommitmentLevel.FINALIZED)
        )
        return self._wrap(block, self._account_json(account, config))

    def get_balance(self, params: list[Any]) -> Any:
        pubkey = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        block = self._block(config)
        account = self.chain.get_account(
            pubkey, params_mod.commitment(config, CommitmentLevel.FINALIZED)
        )
        return self._wrap(block, account.lamports if account is not None else 0)

    def get_multiple_accounts(self, params: list[Any]) -> Any:
        keys = params_mod.required(params, 0, list)
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise invalid_params(f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        config = params_mod.config(params, 1)
        block = self._block(config)
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        pubkeys = [params_mod.pubkey(k) for k in keys]
        # Unlike getAccountInfo (base58), a node defaults getMultipleAccounts to base64.
        return self._wrap(
            block,
            [
                self._account_json(self.chain.get_account(k, commitment), config, "base64")
                for k in pubkeys
            ],
        )

    def get_program_accounts(self, params: list[Any]) -> Any:
        program = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        block = self._block(config)
        filters = params_mod.account_filters(config.get("filters"))
        out = []
        for pubkey, account in self.chain.program_accounts(
            program, params_mod.commitment(config, CommitmentLevel.FINALIZED)
        ):
            if all(f(account) for f in filters):
                out.append({"pubkey": str(pubkey), "account": self._account_json(account, config)})
        if config.get("withContext"):
            return self._wrap(block, out)
        return out

    def get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = params_mod.pubkey(params_mod.required(params, 0, str))
        selector = params_mod.required(params, 1, dict)
        config = params_mod.config(params, 2)
        block = self._block(config)
        mint: Pubkey | None = None
        program: Pubkey | None = None
        if selector.get("mint") is not None:
            mint = params_mod.pubkey(selector["mint"])
        elif selector.get("programId") is not None:
            program = params_mod.pubkey(selector["programId"])
            if program not in TOKEN_PROGRAMS:
                raise invalid_params("Invalid param: unrecognized Token program id")
        else:
            raise invalid_params("Invalid params: expected `mint` or `programId`")
        if mint is not None:
            mint_account = self.chain.get_account(mint)
            if parse_mint(mint_account) is None:
                raise invalid_params("Invalid param: could not find mint")
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        found = self.chain.token_accounts(owner=owner, mint=mint, commitment=commitment)
        return self._wrap(
            block,
            [
                {"pubkey": str(pubkey), "account": self._account_json(account, config)}
                for pubkey, account, token in found
                if program is None or token.program == program
            ],
        )

    def get_token_largest_accounts(self, params: list[Any]) -> Any:
        mint = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        block = self._block(config)
        commitment = params_mod.commitment(config, CommitmentLevel.FINALIZED)
        parsed = parse_mint(self.chain.get_account(mint, commitment))
        if parsed is None:
            raise invalid_params("Invalid param: could not find mint")
        found = self.chain.token_accounts(mint=mint, commitment=commitment)
        found.sort(key=lambda item: (-item[2].amount, str(item[0])))
        return self._wrap(
            block,
            [
                {"address": str(pubkey), **ui_token_amount(token.amount, parsed.decimals)}
                for pubkey, _, token in found[:MAX_TOKEN_LARGEST_ACCOUNTS]
            ],
        )

    def get_token_account_balance(self, params: list[Any]) -> Any:
        pubkey = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        block = self._block(config)
        token = parse_token_account(
            self.chain.get_account(pubkey, params_mod.commitment(config, CommitmentLevel.FINALIZED))
        )
        if token is None:
            raise invalid_params("Invalid param: could not find account")
        return self._wrap(
            block, ui_token_amount(token.amount, self.chain.mint_decimals(token.mint))
        )

    def get_token_supply(self, params: list[Any]) -> Any:
        mint = params_mod.pubkey(params_mod.required(params, 0, str))
        config = params_mod.config(params, 1)
        block = self._block(config)
        parsed = parse_mint(
            self.chain.get_account(mint, params_mod.commitment(config, CommitmentLevel.FINALIZED))
        )
        if parsed is None:
            raise invalid_params("Invalid param: could not find mint")
        return self._wrap(block, ui_token_amount(parsed.supply, parsed.decimals))

    def get_fee_for_message(self, params: list[Any]) -> Any:
        config = params_mod.config(params, 1)
        block = self._block(config)
        try:
            message = from_bytes_versioned(base64.b64decode(params_mod.required(params, 0, str)))
        except (ValueError, binascii.Error):
            raise invalid_params("invalid base64 encoding or message") from None
        if not isinstance(message, (Message, MessageV0)):
            raise invalid_params("Invalid params: unsupported message version")
        if not self.chain.blockhash_valid(message.recent_blockhash):
            return self._wrap(block, None)
        return self._wrap(block, message_fee(message))

    def get_minimum_balance(self, params: list[Any]) -> Any:
        return self.chain.minimum_balance(params_mod.required(params, 0, int))

    # ------------------------------------------------------------------ test-only

    def set_account(self, params: list[Any]) -> Any:
        pubkey = params_mod.pubkey(params_mod.required(params, 0, str))
        spec = params_mod.required(params, 1, dict)
        data = spec.get("data") or ["", "base64"]
        if isinstance(data, list) and len(data) == 2 and data[1] == "base64":
            try:
                raw = base64.b64decode(data[0], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_params("Invalid params: data is not base64") from None
        else:
            raise invalid_params('Invalid params: data must be [<base64>, "base64"]')
        account = Account(
            lamports=int(spec.get("lamports") or 0),
            data=raw,
            owner=params_mod.pubkey(spec.get("owner") or str(SYSTEM_PROGRAM)),
            executable=bool(spec.get("executable", False)),
        )
        self.chain.set_account(pubkey, account)
        return self._context(self.chain.current)

    def drop_slots(self, params: list[Any]) -> Any:
        return self.chain.drop_slots(params_mod.required(params, 0, int))


# ---------------------------------------------------------------------- parameter parsing


def message_fee(message: Message | MessageV0) -> int:
    """Base fee plus prioritization fee, as the bank computes it for a message."""
    keys = message.account_keys
    limit: int | None = None
    price = 0
    others = 0
    for ix in message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] != COMPUTE_BUDGET_PROGRAM:
            others += 1
        elif data[:1] == b"\x02" and len(data) >= 5:
            limit = int.from_bytes(data[1:5], "little")
        elif data[:1] == b"\x03" and len(data) >= 9:
            price = int.from_bytes(data[1:9], "little")
    if limit is None:
        limit = _DEFAULT_INSTRUCTION_CU * others
    limit = min(limit, _MAX_CU)
    priority = (price * limit + 999_999) // 1_000_000
    return _LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures + priority


def _decode_wire_tx(text: str, encoding: str) -> bytes:
    """The transaction bytes, with a node's two size checks: the encoded text first, then the
    decoded bytes (1,644 base64 characters still decode to 1,233 bytes)."""
    raw = _decode_wire_text(text, encoding)
    if len(raw) > PACKET_DATA_SIZE:
        raise invalid_params(
            "decoded solana_transaction::versioned::VersionedTransaction too large: "
            f"{len(raw)} bytes (max: {PACKET_DATA_SIZE} bytes)"
        )
    return raw


def _decode_wire_text(text: str, encoding: str) -> bytes:
    if encoding == "base58":
        if len(text) > MAX_BASE58_TRANSACTION:
            raise invalid_params(
                f"base58 encoded solana_transaction::versioned::VersionedTransaction too large: "
                f"{len(text)} bytes (max: encoded/raw {MAX_BASE58_TRANSACTION}/{PACKET_DATA_SIZE})"
            )
        raw = decode_base58(text, max_chars=MAX_BASE58_TRANSACTION)
        if raw is None:
            raise invalid_params("invalid base58 encoding: InvalidCharacter")
        return raw
    if encoding == "base64":
        if len(text) > MAX_BASE64_TRANSACTION:
            raise invalid_params(
                f"base64 encoded solana_transaction::versioned::VersionedTransaction too large: "
                f"{len(text)} bytes (max: encoded/raw {MAX_BASE64_TRANSACTION}/{PACKET_DATA_SIZE})"
            )
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise invalid_params("invalid base64 encoding") from None
    raise invalid_params(f"Invalid params: unknown variant `{encoding}`")


def _parsed_token_data(chain: LocalChain, account: Account) -> dict[str, Any] | None:
    """jsonParsed data for SPL Token / Token-2022 accounts and mints, with the Token-2022
    extensions."""
    program_name = {TOKEN_PROGRAM: "spl-token", TOKEN_2022_PROGRAM: "spl-token-2022"}.get(
        account.owner
    )
    if program_name is None:
        return None
    token = parse_token_account(account)
    space = len(account.data)
    if token is not None:
        info: dict[str, Any] = {
            "isNative": False,
            "mint": str(token.mint),
            "owner": str(token.owner),
            "state": "frozen" if token.state == AccountState.FROZEN else "initialized",
            "tokenAmount": ui_token_amount(token.amount, chain.mint_decimals(token.mint)),
        }
        extensions = token_extensions(account.owner, bytes(account.data), mint=False)
        if extensions:  # a node leaves the key out when there are none
            info["extensions"] = extensions
        return {
            "program": program_name,
            "parsed": {"info": info, "type": "account"},
            "space": space,
        }
    mint = parse_mint(account)
    if mint is not None:
        info = {
            "decimals": mint.decimals,
            "freezeAuthority": str(mint.freeze_authority) if mint.freeze_authority else None,
            "isInitialized": True,
            "mintAuthority": str(mint.mint_authority) if mint.mint_authority else None,
            "supply": str(mint.supply),
        }
        extensions = token_extensions(account.owner, bytes(account.data), mint=True)
        if extensions:
            info["extensions"] = extensions
        return {"program": program_name, "parsed": {"info": info, "type": "mint"}, "space": space}
    return None
