"""Activation: the owner signs a memo on chain, and only the chain's word makes an NFT ``active``.

The wallet gets an unsigned transaction of two instructions:

- Memo v2 ``aiw3:activate:<mint>`` with the owner as its signer (Memo v2 fails unless every
  account it is given signed, so it cannot name the mint);
- Token ``AmountToUiAmount`` on the mint, read-only: a no-op that puts the mint among the
  transaction's account keys, so the mint's own signature history (what the indexer follows)
  lists the activation.

The owner is the fee payer and the only signer. So the backend never signs (or pays for) a
transaction that anyone may ask for, the fee wallet cannot be drained by asking, and the wallet
may take its time: nothing is held or reserved while it does.

``confirm_activation(signature)`` is the direct check when the client posts the signature: the
transaction must have succeeded at ``confirmed``, reference the mint, hold the memo for it, and
be signed by the NFT's current owner as the chain says now. Only then does the NFT move to
``active`` through the guarded transition the indexer also uses (one ``activated`` event,
whichever sees it first). Anything else (a memo signed by another wallet, a Memo v1 naming the
owner without the owner signing) changes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import struct
from dataclasses import dataclass
from typing import Final

from solana.rpc.commitment import Confirmed, Finalized
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.asset import Asset, fetch_asset
from chain.codecs import decode_compiled, memo
from chain.pubkeys import parse_pubkey
from chain.rpc import RpcClient
from core.errors import CodecError, InputError
from minting.errors import ActivationInvalid, ActivationNotFound, NftAlreadyActive, NftNotFound
from store.repos import nfts, transitions
from store.repos.transitions import ChainFact

# Token (and Token-2022) instruction 23: AmountToUiAmount, reads the mint only.
_AMOUNT_TO_UI_AMOUNT: Final = 23


@dataclass(frozen=True, slots=True)
class ActivationTicket:
    """What the wallet signs: ``transaction`` is base64 of an unsigned legacy transaction
    (owner = fee payer = only signer), valid until ``last_valid_block_height``."""

    mint: str
    owner: str
    transaction: str
    last_valid_block_height: int


@dataclass(frozen=True, slots=True)
class ActivationOutcome:
    mint: str
    status: str  # the NFT's status now
    moved: bool  # False: it was active already (the indexer saw it first, or a repeat)


def activation_instructions(
    owner: Pubkey, mint: Pubkey, token_program: Pubkey
) -> list[Instruction]:
    """The memo signed by ``owner`` and the read-only reference to ``mint``."""
    reference = Instruction(
        token_program,
        struct.pack("<BQ", _AMOUNT_TO_UI_AMOUNT, 1),
        [AccountMeta(mint, is_signer=False, is_writable=False)],
    )
    return [memo.activation(owner, mint), reference]


class Activations:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], rpc: RpcClient) -> None:
        self._sessions = sessions
        self._rpc = rpc

    async def prepare(self, wallet: str | None, mint: str) -> ActivationTicket:
        """The unsigned activation of ``mint`` for ``wallet``, which must hold it on chain
        (``None``: for whoever holds it there now)."""
        mint_key = parse_pubkey(mint, field="mint")
        if wallet is not None:
            parse_pubkey(wallet, field="wallet")
        async with self._sessions() as session:
            await _activatable(session, mint)
        asset = (await fetch_asset(self._rpc, mint_key)).value
        if asset.owner is None or (wallet is not None and asset.owner != wallet):
            raise NftNotFound(
                f"wallet {wallet or '(any)'} does not hold NFT {mint} on chain",
                details={"mint": mint, "wallet": wallet},
            )
        owner = Pubkey.from_string(asset.owner)
        # Finalized: every node the wallet may use knows it (its preflight may run at finalized).
        latest = (await self._rpc.get_latest_blockhash(Finalized)).value
        ixs = activation_instructions(owner, mint_key, Pubkey.from_string(asset.token_program))
        tx = Transaction.new_unsigned(Message.new_with_blockhash(ixs, owner, latest.blockhash))
        return ActivationTicket(
            mint=mint,
            owner=asset.owner,
            transaction=base64.b64encode(bytes(tx)).decode(),
            last_valid_block_height=latest.last_valid_block_height,
        )

    async def confirm_activation(self, signature: str) -> ActivationOutcome:
        """Check the posted transaction on chain and move its NFT to ``active`` once."""
        sig = _signature(signature)
        found = await self._rpc.get_transaction(sig, encoding="base64", commitment=Confirmed)
        if found is None:
            raise ActivationNotFound(
                f"transaction {signature} is not on chain at confirmed (yet)",
                details={"signature": signature},
            )
        meta = found.transaction.meta
        if meta is None or meta.err is not None:
            raise ActivationInvalid(
                "the transaction failed on chain", details={"signature": signature}
            )
        tx = found.transaction.transaction
        if not isinstance(tx, VersionedTransaction):  # asked for base64: solders decodes it
            raise ActivationInvalid("the node answered in another encoding")
        keys = list(tx.message.account_keys)
        if meta.loaded_addresses is not None:
            keys += [*meta.loaded_addresses.writable, *meta.loaded_addresses.readonly]
        claims = _signed_activations(tx, keys)
        if not claims:
            raise ActivationInvalid(
                "the transaction holds no activation memo signed by its signer",
                details={"signature": signature},
            )
        for mint_key, signers in claims:
            outcome = await self._apply(str(mint_key), signers, keys, found.slot, signature)
            if outcome is not None:
                return outcome
        raise ActivationInvalid(
            "no activation in this transaction is signed by the NFT's current owner",
            details={"signature": signature},
        )

    async def _apply(
        self,
        mint: str,
        signers: tuple[Pubkey, ...],
        keys: list[Pubkey],
        slot: int,
        signature: str,
    ) -> ActivationOutcome | None:
        mint_key = Pubkey.from_string(mint)
        if mint_key not in keys:
            return None  # not in the mint's history: the indexer could never agree
        async with self._sessions() as session:
            if await nfts.get_by_mint(session, mint) is None:
                return None
        asset: Asset = (await fetch_asset(self._rpc, mint_key)).value
        if asset.owner is None or Pubkey.from_string(asset.owner) not in signers:
            return None
        fact = ChainFact(slot=slot, signature=signature, at=dt.datetime.now(dt.UTC))
        async with self._sessions() as session, session.begin():
            moved = await transitions.move(session, mint, "active", fact)
            nft = await nfts.get_by_mint(session, mint)
        assert nft is not None
        return ActivationOutcome(mint=mint, status=nft.status, moved=moved is not None)


def _signed_activations(
    tx: VersionedTransaction, keys: list[Pubkey]
) -> list[tuple[Pubkey, tuple[Pubkey, ...]]]:
    """Each activation memo of ``tx`` with the accounts that provably signed it: a memo's
    account counts only if the message lists it as a signer (Memo v1 checks nothing)."""
    count = tx.message.header.num_required_signatures
    signed = set(keys[:count])
    out: list[tuple[Pubkey, tuple[Pubkey, ...]]] = []
    for ix in tx.message.instructions:
        try:
            decoded = decode_compiled(keys, ix.program_id_index, ix.accounts, ix.data, count)
        except CodecError:
            continue
        if not isinstance(decoded, memo.Memo):
            continue
        target = memo.parse_activation(decoded)
        signers = tuple(s for s in decoded.signers if s in signed)
        if target is not None and signers:
            out.append((target, signers))
    return out


async def _activatable(session: AsyncSession, mint: str) -> None:
    nft = await nfts.get_by_mint(session, mint)
    if nft is None or nft.status not in ("unlocked", "active"):
        raise NftNotFound(
            f"no minted AIW3 NFT {mint}",
            details={"mint": mint, "status": None if nft is None else nft.status},
        )
    if nft.status == "active":
        raise NftAlreadyActive(f"NFT {mint} is active already", details={"mint": mint})


def _signature(text: str) -> Signature:
    try:
        return Signature.from_string(text)
    except ValueError:
        raise InputError(
            "not a transaction signature", code="invalid_signature", details={"signature": text}
        ) from None
