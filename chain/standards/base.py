"""One interface over the asset standards: what to send to mint, burn or upgrade an NFT, and how
to read one back.

Builders take public keys only and return a ``Plan``: the instructions, the fee payer and the
keys that must sign. Signing stays with whoever holds the keys (the system wallet and the new
mint's keypair in the backend, the owner in their wallet), so no builder ever sees a secret.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from chain.asset import Asset, RawAccount, decode_asset
from chain.rpc.protocol import PACKET_DATA_SIZE
from core.errors import InputError
from core.types import StandardName

#: Largest serialised transaction the network accepts.
MAX_TRANSACTION_SIZE: Final = PACKET_DATA_SIZE

_LAMPORTS_PER_BYTE_YEAR = 3480
_EXEMPTION_YEARS = 2
_ACCOUNT_STORAGE_OVERHEAD = 128


def default_rent(size: int) -> int:
    """Rent-exempt minimum for ``size`` bytes under the default (mainnet) rent parameters."""
    return (size + _ACCOUNT_STORAGE_OVERHEAD) * _LAMPORTS_PER_BYTE_YEAR * _EXEMPTION_YEARS


RentFn = Callable[[int], int]


class TransactionTooLarge(InputError):
    code = "transaction_too_large"


@dataclass(frozen=True, slots=True)
class MintRequest:
    """What the caller decides about one NFT: its level and metadata uri (and a display title)."""

    level: str
    uri: str
    title: str | None = None
    symbol: str = "AIW3"

    def display_title(self) -> str:
        return self.title or f"Level {self.level}"


@dataclass(frozen=True, slots=True)
class CollectionRequest:
    name: str
    uri: str
    symbol: str = "AIW3"
    max_size: int = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Plan:
    """Instructions for one transaction plus the keys that must sign it (fee payer first)."""

    instructions: tuple[Instruction, ...]
    fee_payer: Pubkey
    signers: tuple[Pubkey, ...]

    def message(self, blockhash: Hash) -> Message:
        return Message.new_with_blockhash(list(self.instructions), self.fee_payer, blockhash)

    def size(self) -> int:
        """Serialised size of the signed transaction (signatures are fixed-size)."""
        return len(bytes(Transaction.new_unsigned(self.message(Hash.default()))))

    def check_size(self) -> Plan:
        size = self.size()
        if size > MAX_TRANSACTION_SIZE:
            raise TransactionTooLarge(
                f"transaction is {size} bytes, the limit is {MAX_TRANSACTION_SIZE}: "
                "shorten the metadata uri or title",
                details={"size": size, "limit": MAX_TRANSACTION_SIZE},
            )
        return self

    def sign(self, keypairs: Sequence[Keypair], blockhash: Hash) -> Transaction:
        """Sign with some or all of the required keys; others can add theirs later with
        ``Transaction.partial_sign`` (the upgrade's owner signs in their wallet)."""
        wanted = set(self.signers)
        extra = [k.pubkey() for k in keypairs if k.pubkey() not in wanted]
        if extra:
            raise InputError(
                "a keypair that this transaction does not need was given",
                details={"pubkeys": [str(k) for k in extra]},
            )
        tx = Transaction.new_unsigned(self.message(blockhash))
        if keypairs:
            tx.partial_sign(list(keypairs), blockhash)
        return tx

    def __add__(self, other: Plan) -> Plan:
        signers = list(self.signers)
        signers += [s for s in other.signers if s not in signers]
        return Plan(self.instructions + other.instructions, self.fee_payer, tuple(signers))


def required_signers(fee_payer: Pubkey, *keys: Pubkey) -> tuple[Pubkey, ...]:
    out = [fee_payer]
    out += [k for k in keys if k not in out]
    return tuple(out)


class AssetStandard(ABC):
    """Build and read NFTs of one standard."""

    name: ClassVar[StandardName]
    token_program: ClassVar[Pubkey]

    def __init__(self, rent: RentFn = default_rent) -> None:
        self._rent = rent

    @abstractmethod
    def mint_plan(
        self,
        *,
        system: Pubkey,
        owner: Pubkey,
        mint: Pubkey,
        request: MintRequest,
        collection: Pubkey | None = None,
    ) -> Plan:
        """Mint one NFT of ``request.level`` to ``owner``: the system wallet pays, is the update
        authority and creator; ``mint`` is a new keypair's address; exactly one token exists and
        no one can mint another. Raises ``TransactionTooLarge`` when it cannot fit one
        transaction."""

    @abstractmethod
    def burn_plan(
        self,
        *,
        owner: Pubkey,
        mint: Pubkey,
        fee_payer: Pubkey | None = None,
        collection: Pubkey | None = None,
        token_account: Pubkey | None = None,
    ) -> Plan:
        """Burn the owner's token and close its account (rent back to the owner).
        ``token_account`` is the account holding the token (``Asset.token_account``) when it is
        not the owner's associated token account."""

    @abstractmethod
    def collection_plan(
        self, *, system: Pubkey, collection_mint: Pubkey, request: CollectionRequest
    ) -> Plan:
        """Create the collection that every NFT of this deployment joins (once)."""

    @abstractmethod
    def related_addresses(self, mint: Pubkey) -> tuple[Pubkey, ...]:
        """Accounts to read, besides token accounts, to decode ``mint``."""

    def upgrade_plan(
        self,
        *,
        system: Pubkey,
        owner: Pubkey,
        old_mint: Pubkey,
        new_mint: Pubkey,
        request: MintRequest,
        collection: Pubkey | None = None,
        old_collection: Pubkey | None = None,
        old_token_account: Pubkey | None = None,
    ) -> Plan:
        """One atomic transaction: the owner burns the old NFT, the system mints the new one.
        The system wallet pays; it and the new mint sign in the backend, the owner in the
        wallet. ``old_token_account`` is where the old NFT sits if not in the owner's ATA."""
        burn = self.burn_plan(
            owner=owner,
            mint=old_mint,
            fee_payer=system,
            collection=old_collection,
            token_account=old_token_account,
        )
        mint = self.mint_plan(
            system=system, owner=owner, mint=new_mint, request=request, collection=collection
        )
        return (burn + mint).check_size()

    def decode(self, mint: Pubkey | str, accounts: Iterable[RawAccount]) -> Asset:
        return decode_asset(mint, accounts, standard=self.name)
