"""The local chain's state: LiteSVM plus everything a node keeps that LiteSVM does not.

LiteSVM executes transactions against accounts and nothing more. This module adds what a
Solana RPC node has: slots and blocks on a fork, a window of 150 valid blockhashes, replay
protection and full transaction history, per-address signature lists, owner and token indexes,
commitment levels (state as of the processed, confirmed and finalized block), and forks
(dropping the newest not-yet-finalized blocks and restoring state to the fork point).

Everything here is synchronous and single-threaded: the transport calls it from one event loop,
so every method is atomic with respect to the others.
"""

from __future__ import annotations

import hashlib
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    InnerInstruction,
    TransactionMetadata,
)

from chain.localnet.encoding import (
    describe_error,
    error_json,
    inner_instructions_json,
    return_data_json,
)
from chain.localnet.errors import RpcError, invalid_params
from chain.localnet.tokens import TokenAccount, parse_mint, parse_token_account
from chain.programs import (
    ADDRESS_LOOKUP_TABLE_PROGRAM,
    MEMO_PROGRAM,
    MEMO_V1_PROGRAM,
    SYSTEM_PROGRAM,
)
from chain.rpc.protocol import (
    INVALID_PARAMS,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
)
from core.errors import ConfigError

MEMO_PROGRAMS = frozenset({MEMO_PROGRAM, MEMO_V1_PROGRAM})
_LOOKUP_TABLE_META_SIZE = 56
_EMPTY = Account(0, b"", SYSTEM_PROGRAM)


class CommitmentLevel(StrEnum):
    """How settled a block is on the local chain (named apart from solana-py's client-side
    ``Commitment`` strings)."""

    PROCESSED = "processed"
    CONFIRMED = "confirmed"
    FINALIZED = "finalized"


_COMMITMENT_RANK = {
    CommitmentLevel.PROCESSED: 0,
    CommitmentLevel.CONFIRMED: 1,
    CommitmentLevel.FINALIZED: 2,
}


def reached(level: CommitmentLevel, wanted: CommitmentLevel) -> bool:
    """Whether something at ``level`` satisfies a request for ``wanted``."""
    return _COMMITMENT_RANK[level] >= _COMMITMENT_RANK[wanted]


@dataclass(frozen=True, slots=True)
class LocalnetConfig:
    slot_ms: int = 400
    finality_depth: int = 31
    # A blockhash is valid while the chain is at most this many blocks past it.
    blockhash_window: int = 150
    # getSignatureStatuses without searchTransactionHistory only sees this many recent blocks.
    status_cache_blocks: int = 300
    faucet_lamports: int = 10**17

    def __post_init__(self) -> None:
        if self.slot_ms < 1:
            raise ConfigError("slot_ms must be at least 1")
        if self.finality_depth < 1:
            raise ConfigError("finality_depth must be at least 1")


@dataclass(slots=True, eq=False)
class Block:
    slot: int
    parent_slot: int
    height: int
    blockhash: Hash
    block_time: int
    signatures: list[Signature] = field(default_factory=list)
    # Prior content (None: did not exist) of every account first written in this block; what
    # a fork drop restores and what commitment-level reads see. Freed once finalized.
    undo: dict[Pubkey, Account | None] | None = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenBalance:
    account_index: int
    token: TokenAccount
    decimals: int


@dataclass(slots=True, eq=False)
class TxRecord:
    """One landed transaction (successful or failed) with everything getTransaction needs."""

    signature: Signature
    seq: int
    block: Block
    tx: VersionedTransaction
    raw: bytes
    account_keys: list[Pubkey]
    loaded_writable: list[Pubkey]
    loaded_readonly: list[Pubkey]
    err: Any
    fee: int
    pre_balances: list[int]
    post_balances: list[int]
    pre_token_balances: list[TokenBalance]
    post_token_balances: list[TokenBalance]
    logs: list[str]
    inner_instructions: list[list[InnerInstruction]]
    compute_units: int
    return_data: tuple[Pubkey, bytes] | None
    memo: str | None

    @property
    def slot(self) -> int:
        return self.block.slot


@dataclass(frozen=True, slots=True)
class Outcome:
    """What executing (or refusing) a transaction produced, for preflight / simulate replies."""

    err: Any
    logs: list[str]
    compute_units: int
    inner_instructions: list[list[InnerInstruction]]
    return_data: tuple[Pubkey, bytes] | None
    fee: int
    account_keys: list[Pubkey]

    def simulation_value(self) -> dict[str, Any]:
        """The simulateTransaction value (also the ``data`` of a preflight failure)."""
        return {
            "err": self.err,
            "logs": self.logs,
            "accounts": None,
            "unitsConsumed": self.compute_units,
            "returnData": return_data_json(self.return_data),
            "innerInstructions": inner_instructions_json(self.inner_instructions),
            "replacementBlockhash": None,
            "fee": self.fee,
        }


@dataclass(frozen=True, slots=True)
class SlotAdvance:
    """A new current block, and which older blocks just became confirmed / finalized, with the
    accounts whose state changed at each level (at confirmed, also those a fork drop reverted
    after they had been confirmed on the abandoned branch)."""

    block: Block
    confirmed: Block | None
    confirmed_written: list[Pubkey]
    finalized: Block | None
    finalized_written: list[Pubkey]


class ChainObserver(Protocol):
    """Receives chain events as they happen (the PubSub server implements it)."""

    def on_transaction(self, record: TxRecord, written: Sequence[Pubkey]) -> None: ...

    def on_accounts_written(self, written: Sequence[Pubkey]) -> None: ...

    def on_slot(self, advance: SlotAdvance) -> None: ...


class LocalChain:
    """LiteSVM behind the bookkeeping of a Solana node. See the module docstring."""

    def __init__(self, config: LocalnetConfig | None = None) -> None:
        self.config = config or LocalnetConfig()
        # Blockhash and signature checks are ours: LiteSVM accepts only its latest blockhash,
        # forgets signatures after ~32 transactions, and simulate must work unsigned.
        self._svm = (
            LiteSVM().with_blockhash_check(False).with_sigverify(False).with_transaction_history(0)
        )
        self.observers: list[ChainObserver] = []
        self._txs: dict[Signature, TxRecord] = {}
        self._by_seq: dict[int, TxRecord] = {}
        self._by_address: dict[Pubkey, list[int]] = {}
        self._seq = 0
        # Indexes kept on every write so queries never scan all accounts.
        self._owner_of: dict[Pubkey, Pubkey] = {}
        self._by_owner: dict[Pubkey, set[Pubkey]] = {}
        self._token_of: dict[Pubkey, TokenAccount] = {}
        self._tokens_by_owner: dict[Pubkey, set[Pubkey]] = {}
        self._tokens_by_mint: dict[Pubkey, set[Pubkey]] = {}
        self._decimals: dict[Pubkey, int] = {}
        self._faucet = Keypair()
        self._airdrops = 0
        self._genesis_time = int(time.time())
        genesis = Block(
            slot=0,
            parent_slot=0,
            height=0,
            blockhash=Hash(hashlib.sha256(b"aiw3-localnet-genesis").digest()),
            block_time=self._genesis_time,
            undo=None,
        )
        self._chain: list[Block] = [genesis]  # the live fork; index == block height
        self._blocks_by_slot: dict[int, Block] = {0: genesis}
        self._hash_height: dict[Hash, int] = {genesis.blockhash: 0}
        self._root = 0  # height of the newest finalized block; never moves back
        # Accounts a fork drop restored after confirmed subscribers saw them on the abandoned
        # branch: they learn the new branch's state when its first block confirms.
        self._confirmed_reverted: dict[Pubkey, None] = {}
        self._next_slot = 1
        self._write(
            self._faucet.pubkey(), Account(self.config.faucet_lamports, b"", SYSTEM_PROGRAM)
        )
        self._open_block()

    # ----------------------------------------------------------------- slots and blocks

    @property
    def current(self) -> Block:
        return self._chain[-1]

    def block_at(self, commitment: CommitmentLevel) -> Block:
        """The newest block at ``commitment``."""
        return self._chain[self._height_at(commitment)]

    def _height_at(self, commitment: CommitmentLevel) -> int:
        top = len(self._chain) - 1
        if commitment is CommitmentLevel.PROCESSED:
            return top
        if commitment is CommitmentLevel.CONFIRMED:
            return max(top - 1, self._root)
        return self._root

    def block_by_slot(self, slot: int) -> Block | None:
        """The block at ``slot`` if it is on the live fork."""
        block = self._blocks_by_slot.get(slot)
        if (
            block is None
            or block.height >= len(self._chain)
            or self._chain[block.height] is not block
        ):
            return None
        return block

    def advance_slot(self) -> SlotAdvance:
        """Close the current block and open the next one (the slot clock calls this)."""
        confirmed = self.current
        confirmed_written = list(
            dict.fromkeys([*self._confirmed_reverted, *(confirmed.undo or ())])
        )
        self._confirmed_reverted.clear()
        block = self._open_block()
        finalized: Block | None = None
        written: list[Pubkey] = []
        candidate = block.height - self.config.finality_depth
        if candidate > self._root:
            self._root = candidate
            finalized = self._chain[candidate]
            written = list(finalized.undo or ())
            finalized.undo = None
        advance = SlotAdvance(block, confirmed, confirmed_written, finalized, written)
        for observer in self.observers:
            observer.on_slot(advance)
        return advance

    def _open_block(self) -> Block:
        parent = self.current
        slot = self._next_slot
        self._next_slot += 1
        seed = bytes(parent.blockhash) + slot.to_bytes(8, "little")
        block = Block(
            slot=slot,
            parent_slot=parent.slot,
            height=parent.height + 1,
            blockhash=Hash(hashlib.sha256(seed).digest()),
            block_time=max(int(time.time()), parent.block_time),
        )
        self._chain.append(block)
        self._blocks_by_slot[slot] = block
        self._hash_height[block.blockhash] = block.height
        # Keep hashes a little past the window so finalized-commitment checks still see them.
        stale = block.height - self.config.blockhash_window - self.config.finality_depth - 1
        if stale > 0:
            self._hash_height.pop(self._chain[stale].blockhash, None)
        self._svm.set_clock(Clock(slot, self._genesis_time, 0, 0, block.block_time))
        return block

    def drop_slots(self, count: int) -> dict[str, Any]:
        """Drop the newest ``count`` blocks (the current one included) as a fork switch would:
        their transactions vanish and every account returns to its state at the fork point.
        The next block gets a new slot number whose parent is the fork point."""
        first = len(self._chain) - count
        if count < 1 or first <= self._root:
            raise invalid_params(
                f"Invalid params: can drop 1..{len(self._chain) - 1 - self._root} "
                "not-yet-finalized slots"
            )
        dropped = self._chain[first:]
        confirmed_height = self._height_at(CommitmentLevel.CONFIRMED)
        restored: dict[Pubkey, None] = {}
        for block in reversed(dropped):
            for pubkey, prior in (block.undo or {}).items():
                self._write(pubkey, prior)
                restored[pubkey] = None
                if block.height <= confirmed_height:
                    self._confirmed_reverted[pubkey] = None
            for signature in reversed(block.signatures):
                record = self._txs.pop(signature)
                del self._by_seq[record.seq]
                for key in _unique(record.account_keys):
                    seqs = self._by_address[key]
                    if seqs and seqs[-1] == record.seq:
                        seqs.pop()
            self._hash_height.pop(block.blockhash, None)
        del self._chain[first:]
        fork = self.current
        block = self._open_block()
        advance = SlotAdvance(block, None, [], None, [])
        for observer in self.observers:
            observer.on_slot(advance)
            # Subscribers last told about the abandoned branch learn the state on the new one,
            # as a node notifies when an account's newest version comes from another fork.
            observer.on_accounts_written(list(restored))
        return {
            "droppedSlots": [b.slot for b in dropped],
            "forkSlot": fork.slot,
            "slot": block.slot,
        }

    # ----------------------------------------------------------------- blockhashes

    def blockhash_valid(
        self, blockhash: Hash, commitment: CommitmentLevel = CommitmentLevel.PROCESSED
    ) -> bool:
        height = self._hash_height.get(blockhash)
        if height is None:
            return False
        top = self._height_at(commitment)
        return height <= top and top - height <= self.config.blockhash_window

    def last_valid_block_height(self, block: Block) -> int:
        return block.height + self.config.blockhash_window

    # ----------------------------------------------------------------- accounts

    def get_account(
        self, pubkey: Pubkey, commitment: CommitmentLevel = CommitmentLevel.PROCESSED
    ) -> Account | None:
        """The account as of the newest block at ``commitment`` (None: does not exist)."""
        for block in self._chain[self._height_at(commitment) + 1 :]:
            if block.undo is not None and pubkey in block.undo:
                return block.undo[pubkey]
        return self._svm.get_account(pubkey)

    def program_accounts(
        self, owner: Pubkey, commitment: CommitmentLevel = CommitmentLevel.PROCESSED
    ) -> list[tuple[Pubkey, Account]]:
        candidates = set(self._by_owner.get(owner, ()))
        candidates.update(self._recently_written(commitment))
        out = []
        for pubkey in candidates:
            account = self.get_account(pubkey, commitment)
            if account is not None and account.owner == owner:
                out.append((pubkey, account))
        return out

    def token_accounts(
        self,
        *,
        owner: Pubkey | None = None,
        mint: Pubkey | None = None,
        commitment: CommitmentLevel = CommitmentLevel.PROCESSED,
    ) -> list[tuple[Pubkey, Account, TokenAccount]]:
        """Token accounts (both token programs) by token owner and/or mint."""
        if owner is not None:
            candidates = set(self._tokens_by_owner.get(owner, ()))
        elif mint is not None:
            candidates = set(self._tokens_by_mint.get(mint, ()))
        else:
            raise ValueError("owner or mint is required")
        candidates.update(self._recently_written(commitment))
        out = []
        for pubkey in candidates:
            account = self.get_account(pubkey, commitment)
            token = parse_token_account(account)
            if account is None or token is None:
                continue
            if (owner is None or token.owner == owner) and (mint is None or token.mint == mint):
                out.append((pubkey, account, token))
        return out

    def _recently_written(self, commitment: CommitmentLevel) -> Iterable[Pubkey]:
        """Accounts written after the block at ``commitment``: the indexes show their newest
        state, so an older commitment must look at them one by one."""
        for block in self._chain[self._height_at(commitment) + 1 :]:
            yield from block.undo or ()

    def mint_decimals(self, mint: Pubkey) -> int:
        decimals = self._decimals.get(mint)
        if decimals is None:
            parsed = parse_mint(self._svm.get_account(mint))
            if parsed is None:
                return 0
            decimals = self._decimals[mint] = parsed.decimals
        return decimals

    def minimum_balance(self, size: int) -> int:
        return self._svm.minimum_balance_for_rent_exemption(size)

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        """Test-only write (``localnet_setAccount``); undone by a fork drop like any write."""
        self._note_write(pubkey, self._svm.get_account(pubkey))
        self._write(pubkey, account if account.lamports > 0 else None)
        for observer in self.observers:
            observer.on_accounts_written([pubkey])

    def _note_write(self, pubkey: Pubkey, prior: Account | None) -> None:
        undo = self.current.undo
        if undo is not None and pubkey not in undo:
            undo[pubkey] = prior

    def _write(self, pubkey: Pubkey, account: Account | None) -> None:
        self._svm.set_account(pubkey, account if account is not None else _EMPTY)
        self._reindex(pubkey, account, parse_token_account(account))

    def _reindex(self, pubkey: Pubkey, account: Account | None, new: TokenAccount | None) -> None:
        """Update the indexes for ``account`` now at ``pubkey``; ``new`` is its parsed token
        account (parsed by the caller, which often needs it too)."""
        old_owner = self._owner_of.get(pubkey)
        new_owner = account.owner if account is not None else None
        if old_owner != new_owner:
            if old_owner is not None:
                self._by_owner[old_owner].discard(pubkey)
                del self._owner_of[pubkey]
            if new_owner is not None:
                self._by_owner.setdefault(new_owner, set()).add(pubkey)
                self._owner_of[pubkey] = new_owner
        old = self._token_of.get(pubkey)
        if old != new:
            if old is not None:
                self._tokens_by_owner[old.owner].discard(pubkey)
                self._tokens_by_mint[old.mint].discard(pubkey)
                del self._token_of[pubkey]
            if new is not None:
                self._tokens_by_owner.setdefault(new.owner, set()).add(pubkey)
                self._tokens_by_mint.setdefault(new.mint, set()).add(pubkey)
                self._token_of[pubkey] = new
        self._decimals.pop(pubkey, None)

    # ----------------------------------------------------------------- transactions

    def submit(
        self,
        raw: bytes,
        *,
        skip_preflight: bool,
        preflight_commitment: CommitmentLevel = CommitmentLevel.FINALIZED,
    ) -> Signature:
        """sendTransaction: execute ``raw`` in the current block.

        Preflight checks run against the block at ``preflight_commitment``, as a node simulates
        on that bank: the blockhash must be known there, and only a duplicate already visible
        there is reported. A preflight failure is -32002 and changes nothing. After preflight
        (or without it) the leader's view applies: a transaction with a blockhash outside the
        current window, a duplicate or a bad signature is silently dropped; a failed one that
        can pay its fee lands as failed (only without preflight: with it, it was refused)."""
        tx = decode_transaction(raw)
        signature = tx.signatures[0]
        if not all(tx.verify_with_results()):
            if skip_preflight:
                return signature
            raise RpcError(
                TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                "Transaction signature verification failure",
            )
        result = self._execute(tx, raw, preflight=None if skip_preflight else preflight_commitment)
        if isinstance(result, Outcome) and not skip_preflight:
            raise RpcError(
                SEND_TRANSACTION_PREFLIGHT_FAILURE,
                f"Transaction simulation failed: {describe_error(result.err)}",
                result.simulation_value(),
            )
        return signature

    def simulate(
        self,
        tx: VersionedTransaction,
        *,
        replace_blockhash: bool,
        commitment: CommitmentLevel = CommitmentLevel.FINALIZED,
    ) -> tuple[Outcome, list[tuple[Pubkey, Account]]]:
        """Run ``tx`` without changing anything; also returns the accounts it would write.
        The blockhash must be known at ``commitment`` (the bank a node simulates on)."""
        if replace_blockhash:
            tx = _with_blockhash(tx, self.block_at(commitment).blockhash)
        elif not self.blockhash_valid(tx.message.recent_blockhash, commitment):
            return _refused("BlockhashNotFound"), []
        keys = self._resolve_keys(message_of(tx))
        if keys is None:
            return _refused("AddressLookupTableNotFound"), []
        result = self._svm.simulate_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            return _outcome(error_json(result.err()), result.meta(), keys[0]), []
        return _outcome(None, result.meta(), keys[0]), list(result.post_accounts())

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """requestAirdrop: a real transfer from the faucet, so it has a full history entry."""
        instructions = [
            transfer(
                TransferParams(
                    from_pubkey=self._faucet.pubkey(), to_pubkey=pubkey, lamports=lamports
                )
            )
        ]
        self._airdrops += 1
        blockhash = self.current.blockhash
        message = Message.new_with_blockhash(instructions, self._faucet.pubkey(), blockhash)
        tx = Transaction([self._faucet], message, blockhash)
        if tx.signatures[0] in self._txs:
            # Same amount to the same address within one slot: make the bytes unique.
            memo = Instruction(
                MEMO_PROGRAM,
                f"airdrop {self._airdrops}".encode(),
                [AccountMeta(self._faucet.pubkey(), is_signer=True, is_writable=False)],
            )
            message = Message.new_with_blockhash(
                [*instructions, memo], self._faucet.pubkey(), blockhash
            )
            tx = Transaction([self._faucet], message, blockhash)
        raw = bytes(tx)
        result = self._execute(
            VersionedTransaction.from_bytes(raw), raw, preflight=CommitmentLevel.PROCESSED
        )
        if not isinstance(result, TxRecord):
            err = result.err if result is not None else "AlreadyProcessed"
            raise RpcError(INVALID_PARAMS, f"airdrop failed: {describe_error(err)}")
        return result.signature

    def _execute(
        self, tx: VersionedTransaction, raw: bytes, *, preflight: CommitmentLevel | None
    ) -> TxRecord | Outcome | None:
        """Land ``tx`` (a record), refuse it in preflight (an outcome: nothing changed), or
        drop it as a leader would (None). ``preflight`` None: no preflight, failures land."""
        signature = tx.signatures[0]
        message = message_of(tx)
        existing = self._txs.get(signature)
        if preflight is not None:
            if existing is not None and reached(self.commitment_of(existing), preflight):
                return _refused("AlreadyProcessed")
            if not self.blockhash_valid(message.recent_blockhash, preflight):
                return _refused("BlockhashNotFound")
        if existing is not None:
            return None
        if not self.blockhash_valid(message.recent_blockhash):
            if preflight is not None:
                # The leader will drop it (the blockhash expired on the newest block), but a
                # node simulates on the preflight bank first, where it is still valid: a
                # failing transaction is refused there (-32002), not accepted and then lost.
                outcome, _ = self.simulate(tx, replace_blockhash=False, commitment=preflight)
                if outcome.err is not None:
                    return outcome
            return None
        resolved = self._resolve_keys(message)
        if resolved is None:
            return _refused("AddressLookupTableNotFound")
        keys, writable, loaded_w, loaded_r = resolved
        svm = self._svm
        pre = [svm.get_account(k) for k in keys]
        result = svm.send_transaction(tx)
        post = [svm.get_account(k) if writable[i] else pre[i] for i, k in enumerate(keys)]
        failed = isinstance(result, FailedTransactionMetadata)
        meta: TransactionMetadata = result.meta() if failed else result  # type: ignore[union-attr,assignment]
        err = error_json(result.err()) if failed else None  # type: ignore[union-attr]
        # A failure that charged the fee payer landed; one that did not was never included.
        landed = not failed or _lamports(post[0]) != _lamports(pre[0])
        if failed and (preflight is not None or not landed):
            for i, key in enumerate(keys):
                if writable[i] and post[i] != pre[i]:
                    prior = pre[i]
                    svm.set_account(key, prior if prior is not None else _EMPTY)
            return _outcome(err, meta, keys)
        # Each account state is parsed once, for both the token balances and the index.
        pre_tokens = [parse_token_account(a) for a in pre]
        post_tokens = list(pre_tokens)
        written = []
        for i, key in enumerate(keys):
            if writable[i] and post[i] != pre[i]:
                post_tokens[i] = parse_token_account(post[i])
                self._note_write(key, pre[i])
                self._reindex(key, post[i], post_tokens[i])
                written.append(key)
        self._seq += 1
        block = self.current
        record = TxRecord(
            signature=signature,
            seq=self._seq,
            block=block,
            tx=tx,
            raw=raw,
            account_keys=keys,
            loaded_writable=loaded_w,
            loaded_readonly=loaded_r,
            err=err,
            fee=meta.fee(),
            pre_balances=[_lamports(a) for a in pre],
            post_balances=[_lamports(a) for a in post],
            pre_token_balances=self._token_balances(pre_tokens),
            post_token_balances=self._token_balances(post_tokens),
            logs=list(meta.logs()),
            inner_instructions=[list(ixs) for ixs in meta.inner_instructions()],
            compute_units=meta.compute_units_consumed(),
            return_data=_return_data(meta),
            memo=_memo(message, keys),
        )
        self._txs[signature] = record
        self._by_seq[record.seq] = record
        block.signatures.append(signature)
        for key in _unique(keys):
            self._by_address.setdefault(key, []).append(record.seq)
        for observer in self.observers:
            observer.on_transaction(record, written)
        return record

    def _resolve_keys(
        self, message: Message | MessageV0
    ) -> tuple[list[Pubkey], list[bool], list[Pubkey], list[Pubkey]] | None:
        """All account keys (static then loaded writable then loaded readonly) and which may
        be written. None when an address lookup table is missing."""
        static = list(message.account_keys)
        header = message.header
        signed = header.num_required_signatures
        writable_signed = signed - header.num_readonly_signed_accounts
        writable_unsigned = len(static) - header.num_readonly_unsigned_accounts
        writable = [
            i < writable_signed or signed <= i < writable_unsigned for i in range(len(static))
        ]
        loaded_w: list[Pubkey] = []
        loaded_r: list[Pubkey] = []
        if isinstance(message, MessageV0):
            for lookup in message.address_table_lookups:
                table = self._svm.get_account(lookup.account_key)
                if table is None or table.owner != ADDRESS_LOOKUP_TABLE_PROGRAM:
                    return None
                data = bytes(table.data)
                addresses = [
                    Pubkey.from_bytes(data[o : o + 32])
                    for o in range(_LOOKUP_TABLE_META_SIZE, len(data) - 31, 32)
                ]
                try:
                    loaded_w += [addresses[i] for i in lookup.writable_indexes]
                    loaded_r += [addresses[i] for i in lookup.readonly_indexes]
                except IndexError:
                    return None
        keys = static + loaded_w + loaded_r
        writable += [True] * len(loaded_w) + [False] * len(loaded_r)
        return keys, writable, loaded_w, loaded_r

    def _token_balances(self, tokens: Sequence[TokenAccount | None]) -> list[TokenBalance]:
        out: list[TokenBalance] = []
        for i, token in enumerate(tokens):
            if token is not None:
                out.append(TokenBalance(i, token, self.mint_decimals(token.mint)))
        return out

    # ----------------------------------------------------------------- history

    def commitment_of(self, record: TxRecord) -> CommitmentLevel:
        height = record.block.height
        if height <= self._root:
            return CommitmentLevel.FINALIZED
        if height < len(self._chain) - 1:
            return CommitmentLevel.CONFIRMED
        return CommitmentLevel.PROCESSED

    def confirmations(self, record: TxRecord) -> int | None:
        """Blocks built on top of the record's block; None once finalized (rooted)."""
        if record.block.height <= self._root:
            return None
        return len(self._chain) - 1 - record.block.height

    def transaction(self, signature: Signature, commitment: CommitmentLevel) -> TxRecord | None:
        record = self._txs.get(signature)
        if record is None or not reached(self.commitment_of(record), commitment):
            return None
        return record

    def status(self, signature: Signature, *, search_history: bool) -> TxRecord | None:
        record = self._txs.get(signature)
        if record is None:
            return None
        age = len(self._chain) - 1 - record.block.height
        if not search_history and age > self.config.status_cache_blocks:
            return None
        return record

    def signatures_for_address(
        self,
        address: Pubkey,
        *,
        commitment: CommitmentLevel,
        limit: int,
        before: Signature | None,
        until: Signature | None,
    ) -> list[TxRecord]:
        """Newest first; ``before`` and ``until`` are exclusive bounds."""
        seqs = self._by_address.get(address, [])
        end = len(seqs)
        if before is not None:
            anchor = self._txs.get(before)
            if anchor is None:
                return []
            end = bisect_left(seqs, anchor.seq)
        stop_seq = 0
        if until is not None:
            anchor = self._txs.get(until)
            if anchor is not None:
                stop_seq = anchor.seq
        top = self._height_at(commitment)
        out: list[TxRecord] = []
        for i in range(end - 1, -1, -1):
            seq = seqs[i]
            if seq <= stop_seq or len(out) >= limit:
                break
            record = self._by_seq[seq]
            if record.block.height <= top:
                out.append(record)
        return out

    def blocks_after(self, slot: int) -> list[Block]:
        return [b for b in self._chain if b.slot > slot]


def decode_transaction(raw: bytes) -> VersionedTransaction:
    try:
        tx = VersionedTransaction.from_bytes(raw)
    except Exception as exc:  # solders raises ValueError / SerdeJSONError variants
        raise invalid_params(f"failed to deserialize transaction: {exc}") from None
    if not tx.signatures:
        raise invalid_params("invalid transaction: transaction has no signatures")
    try:
        tx.sanitize()
    except Exception as exc:
        raise invalid_params(f"invalid transaction: {exc}") from None
    if not isinstance(tx.message, (Message, MessageV0)):
        raise RpcError(UNSUPPORTED_TRANSACTION_VERSION, "Transaction version is not supported")
    return tx


def message_of(tx: VersionedTransaction) -> Message | MessageV0:
    """The message of a transaction ``decode_transaction`` accepted (legacy or v0)."""
    message = tx.message
    if not isinstance(message, (Message, MessageV0)):
        raise RpcError(UNSUPPORTED_TRANSACTION_VERSION, "Transaction version is not supported")
    return message


def _with_blockhash(tx: VersionedTransaction, blockhash: Hash) -> VersionedTransaction:
    msg = tx.message
    new: Message | MessageV0
    if isinstance(msg, MessageV0):
        new = MessageV0(
            msg.header, msg.account_keys, blockhash, msg.instructions, msg.address_table_lookups
        )
    else:
        new = Message.new_with_compiled_instructions(
            msg.header.num_required_signatures,
            msg.header.num_readonly_signed_accounts,
            msg.header.num_readonly_unsigned_accounts,
            msg.account_keys,
            blockhash,
            msg.instructions,
        )
    return VersionedTransaction.populate(new, tx.signatures)


def _refused(err: str) -> Outcome:
    return Outcome(err, [], 0, [], None, 0, [])


def _outcome(err: Any, meta: TransactionMetadata, keys: list[Pubkey]) -> Outcome:
    return Outcome(
        err=err,
        logs=list(meta.logs()),
        compute_units=meta.compute_units_consumed(),
        inner_instructions=[list(ixs) for ixs in meta.inner_instructions()],
        return_data=_return_data(meta),
        fee=meta.fee(),
        account_keys=keys,
    )


def _return_data(meta: TransactionMetadata) -> tuple[Pubkey, bytes] | None:
    data = meta.return_data()
    if not data.data:
        return None
    return data.program_id, bytes(data.data)


def _memo(message: Message | MessageV0, keys: list[Pubkey]) -> str | None:
    """The ``memo`` field of getSignaturesForAddress: ``[len] text`` per memo, ``; ``-joined."""
    memos = []
    for ix in message.instructions:
        if keys[ix.program_id_index] in MEMO_PROGRAMS:
            data = bytes(ix.data)
            memos.append(f"[{len(data)}] {data.decode('utf-8', 'replace')}")
    return "; ".join(memos) if memos else None


def _lamports(account: Account | None) -> int:
    return account.lamports if account is not None else 0


def _unique(keys: list[Pubkey]) -> list[Pubkey]:
    return list(dict.fromkeys(keys))
