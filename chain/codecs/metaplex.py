"""Metaplex Token Metadata: PDAs, the Metadata and MasterEdition accounts, and the instructions
the ``metaplex`` standard uses (CreateMetadataAccountV3, CreateMasterEditionV3, SignMetadata,
VerifySizedCollectionItem, BurnNft).

The program cannot run locally, so these layouts follow the program's published Borsh layouts
field by field (one-byte instruction discriminators, ``Option`` = u8 tag, strings = u32 length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chain.codecs import borsh
from chain.programs import SYSTEM_PROGRAM, TOKEN_METADATA_PROGRAM, TOKEN_PROGRAM
from core.errors import CodecError, InputError

MAX_NAME = 32
MAX_SYMBOL = 10
MAX_URI = 200
MAX_CREATORS = 5
#: Size the program allocates for a Metadata account (strings padded, every option present).
MAX_METADATA_LEN = 679
MAX_MASTER_EDITION_LEN = 282
#: Size of a print edition's Edition account (key, parent, edition number, padding).
MAX_EDITION_LEN = 241

_PREFIX = b"metadata"
_EDITION = b"edition"


class Key(IntEnum):
    UNINITIALIZED = 0
    EDITION_V1 = 1
    MASTER_EDITION_V1 = 2
    RESERVATION_LIST_V1 = 3
    METADATA_V1 = 4
    RESERVATION_LIST_V2 = 5
    MASTER_EDITION_V2 = 6
    EDITION_MARKER = 7


class TokenStandard(IntEnum):
    NON_FUNGIBLE = 0
    FUNGIBLE_ASSET = 1
    FUNGIBLE = 2
    NON_FUNGIBLE_EDITION = 3
    PROGRAMMABLE_NON_FUNGIBLE = 4
    PROGRAMMABLE_NON_FUNGIBLE_EDITION = 5

    @property
    def label(self) -> str:
        """The name DAS and the Metaplex SDKs use (``ProgrammableNonFungible``)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


class UseMethod(IntEnum):
    BURN = 0
    MULTIPLE = 1
    SINGLE = 2


class InstructionType(IntEnum):
    SIGN_METADATA = 7
    CREATE_MASTER_EDITION_V3 = 17
    VERIFY_COLLECTION = 18
    BURN_NFT = 29
    VERIFY_SIZED_COLLECTION_ITEM = 30
    SET_AND_VERIFY_SIZED_COLLECTION_ITEM = 32
    CREATE_METADATA_ACCOUNT_V3 = 33


def metadata_pda(mint: Pubkey) -> Pubkey:
    key, _ = Pubkey.find_program_address(
        [_PREFIX, bytes(TOKEN_METADATA_PROGRAM), bytes(mint)], TOKEN_METADATA_PROGRAM
    )
    return key


def master_edition_pda(mint: Pubkey) -> Pubkey:
    key, _ = Pubkey.find_program_address(
        [_PREFIX, bytes(TOKEN_METADATA_PROGRAM), bytes(mint), _EDITION], TOKEN_METADATA_PROGRAM
    )
    return key


# --- data types --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Creator:
    address: Pubkey
    verified: bool
    share: int


@dataclass(frozen=True, slots=True)
class Collection:
    verified: bool
    key: Pubkey


@dataclass(frozen=True, slots=True)
class Uses:
    use_method: UseMethod
    remaining: int
    total: int


@dataclass(frozen=True, slots=True)
class CollectionDetails:
    """V1 carries the collection size; V2 (tag 1) is 8 padding bytes."""

    version: int
    size: int


@dataclass(frozen=True, slots=True)
class ProgrammableConfig:
    rule_set: Pubkey | None


@dataclass(frozen=True, slots=True)
class DataV2:
    name: str
    symbol: str
    uri: str
    seller_fee_basis_points: int
    creators: tuple[Creator, ...] | None
    collection: Collection | None = None
    uses: Uses | None = None


@dataclass(frozen=True, slots=True)
class Metadata:
    key: int
    update_authority: Pubkey
    mint: Pubkey
    name: str
    symbol: str
    uri: str
    seller_fee_basis_points: int
    creators: tuple[Creator, ...] | None
    primary_sale_happened: bool
    is_mutable: bool
    edition_nonce: int | None
    token_standard: TokenStandard | None = None
    collection: Collection | None = None
    uses: Uses | None = None
    collection_details: CollectionDetails | None = None
    programmable_config: ProgrammableConfig | None = None


@dataclass(frozen=True, slots=True)
class MasterEdition:
    """The original: ``max_supply`` Some(0) means no print can ever be made, None unlimited."""

    key: int
    supply: int
    max_supply: int | None


@dataclass(frozen=True, slots=True)
class Edition:
    """A print (a numbered copy) of the master edition of ``parent``'s mint; it sits at the
    same PDA of its own mint as a master edition would."""

    key: int
    parent: Pubkey
    edition: int


# --- writers -----------------------------------------------------------------------------------


def _creator(c: Creator) -> bytes:
    return bytes(c.address) + borsh.boolean(c.verified) + borsh.u8(c.share)


def _collection(c: Collection) -> bytes:
    return borsh.boolean(c.verified) + bytes(c.key)


def _uses(u: Uses) -> bytes:
    return borsh.u8(u.use_method) + borsh.u64(u.remaining) + borsh.u64(u.total)


def _collection_details(d: CollectionDetails) -> bytes:
    if d.version == 0:
        return b"\x00" + borsh.u64(d.size)
    return b"\x01" + bytes(8)


def _programmable_config(p: ProgrammableConfig) -> bytes:
    return b"\x00" + borsh.option(p.rule_set, bytes)


def _padded(value: str, width: int, pad: bool) -> bytes:
    raw = value.encode("utf-8")
    if pad and len(raw) < width:
        raw += bytes(width - len(raw))
    return borsh.u32(len(raw)) + raw


def encode_metadata(meta: Metadata, *, pad: bool = True) -> bytes:
    """Serialise a Metadata account; ``pad`` writes strings NUL-padded as the program does on
    creation (so the first creator sits at byte 326) and pads the account to its full size."""
    out = (
        borsh.u8(meta.key)
        + bytes(meta.update_authority)
        + bytes(meta.mint)
        + _padded(meta.name, MAX_NAME, pad)
        + _padded(meta.symbol, MAX_SYMBOL, pad)
        + _padded(meta.uri, MAX_URI, pad)
        + borsh.u16(meta.seller_fee_basis_points)
        + borsh.option(meta.creators, lambda cs: borsh.vec(cs, _creator))
        + borsh.boolean(meta.primary_sale_happened)
        + borsh.boolean(meta.is_mutable)
        + borsh.option(meta.edition_nonce, borsh.u8)
        + borsh.option(meta.token_standard, borsh.u8)
        + borsh.option(meta.collection, _collection)
        + borsh.option(meta.uses, _uses)
        + borsh.option(meta.collection_details, _collection_details)
        + borsh.option(meta.programmable_config, _programmable_config)
    )
    if pad and len(out) < MAX_METADATA_LEN:
        out += bytes(MAX_METADATA_LEN - len(out))
    return out


def encode_master_edition(edition: MasterEdition) -> bytes:
    out = (
        borsh.u8(edition.key)
        + borsh.u64(edition.supply)
        + borsh.option(edition.max_supply, borsh.u64)
    )
    return out + bytes(MAX_MASTER_EDITION_LEN - len(out))


def encode_edition(edition: Edition) -> bytes:
    out = borsh.u8(edition.key) + bytes(edition.parent) + borsh.u64(edition.edition)
    return out + bytes(MAX_EDITION_LEN - len(out))


# --- readers -----------------------------------------------------------------------------------


def _read_creator(r: borsh.Reader) -> Creator:
    address = r.pubkey("creator.address")
    return Creator(address, r.boolean("creator.verified"), r.u8("creator.share"))


def _read_collection(r: borsh.Reader) -> Collection:
    return Collection(r.boolean("collection.verified"), r.pubkey("collection.key"))


def _read_uses(r: borsh.Reader) -> Uses:
    method = r.u8("uses.use_method")
    if method > UseMethod.SINGLE:
        raise CodecError(f"metadata: use method {method} is unknown")
    return Uses(UseMethod(method), r.u64("uses.remaining"), r.u64("uses.total"))


def _read_collection_details(r: borsh.Reader) -> CollectionDetails:
    version = r.u8("collection_details.version")
    if version == 0:
        return CollectionDetails(0, r.u64("collection_details.size"))
    if version == 1:
        r.take(8, "collection_details.padding")
        return CollectionDetails(1, 0)
    raise CodecError(f"metadata: collection details version {version} is unknown")


def _read_programmable_config(r: borsh.Reader) -> ProgrammableConfig:
    version = r.u8("programmable_config.version")
    if version != 0:
        raise CodecError(f"metadata: programmable config version {version} is unknown")
    return ProgrammableConfig(r.option(lambda: r.pubkey("rule_set"), "rule_set"))


def _read_token_standard(r: borsh.Reader) -> TokenStandard:
    value = r.u8("token_standard")
    if value > TokenStandard.PROGRAMMABLE_NON_FUNGIBLE_EDITION:
        raise CodecError(f"metadata: token standard {value} is unknown")
    return TokenStandard(value)


def _strip(value: str) -> str:
    # The program pads name/symbol/uri with NULs to a fixed width on creation.
    return value.rstrip("\x00")


def decode_metadata(data: bytes) -> Metadata:
    """Decode a Metadata account the way the program itself reads it.

    The head (through ``edition_nonce``) must be complete. The tail was added by later program
    versions: old or re-serialised accounts may stop early or hold corrupt bytes there, so, like
    the program, a failure reading token_standard/collection/uses clears all three, and
    collection_details / programmable_config each fall back to none.
    """
    r = borsh.Reader(data, "metadata")
    key = r.u8("key")
    if key != Key.METADATA_V1:
        raise CodecError(f"metadata: account key is {key}, expected {int(Key.METADATA_V1)}")
    update_authority = r.pubkey("update_authority")
    mint = r.pubkey("mint")
    name = _strip(r.string("name"))
    symbol = _strip(r.string("symbol"))
    uri = _strip(r.string("uri"))
    fee = r.u16("seller_fee_basis_points")
    creators = r.option(lambda: tuple(r.vec(lambda: _read_creator(r), "creators")), "creators")
    primary_sale = r.boolean("primary_sale_happened")
    mutable = r.boolean("is_mutable")
    edition_nonce = r.option(lambda: r.u8("edition_nonce"), "edition_nonce")

    token_standard: TokenStandard | None = None
    collection: Collection | None = None
    uses: Uses | None = None
    details: CollectionDetails | None = None
    config: ProgrammableConfig | None = None
    try:
        token_standard = r.option(lambda: _read_token_standard(r), "token_standard")
        collection = r.option(lambda: _read_collection(r), "collection")
        uses = r.option(lambda: _read_uses(r), "uses")
    except CodecError:
        token_standard, collection, uses = None, None, None
    else:
        try:
            details = r.option(lambda: _read_collection_details(r), "collection_details")
            config = r.option(lambda: _read_programmable_config(r), "programmable_config")
        except CodecError:
            pass
    return Metadata(
        key=key,
        update_authority=update_authority,
        mint=mint,
        name=name,
        symbol=symbol,
        uri=uri,
        seller_fee_basis_points=fee,
        creators=creators,
        primary_sale_happened=primary_sale,
        is_mutable=mutable,
        edition_nonce=edition_nonce,
        token_standard=token_standard,
        collection=collection,
        uses=uses,
        collection_details=details,
        programmable_config=config,
    )


def decode_master_edition(data: bytes) -> MasterEdition:
    r = borsh.Reader(data, "master edition")
    key = r.u8("key")
    if key != Key.MASTER_EDITION_V2:
        raise CodecError(f"master edition: account key is {key}, expected 6")
    return MasterEdition(key, r.u64("supply"), r.option(lambda: r.u64("max_supply"), "max_supply"))


def decode_edition(data: bytes) -> MasterEdition | Edition:
    """Whatever sits at a mint's edition PDA: a master edition (V2, or the V1 that old NFTs
    still carry: same head) or a print edition."""
    r = borsh.Reader(data, "edition")
    key = r.u8("key")
    if key in (Key.MASTER_EDITION_V1, Key.MASTER_EDITION_V2):
        supply = r.u64("supply")
        return MasterEdition(key, supply, r.option(lambda: r.u64("max_supply"), "max_supply"))
    if key == Key.EDITION_V1:
        return Edition(key, r.pubkey("parent"), r.u64("edition"))
    raise CodecError(
        f"edition: account key is {key}, not a master or print edition", details={"key": key}
    )


# --- instructions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateMetadataAccountV3:
    metadata: Pubkey
    mint: Pubkey
    mint_authority: Pubkey
    payer: Pubkey
    update_authority: Pubkey
    update_authority_is_signer: bool
    data: DataV2
    is_mutable: bool
    collection_details: CollectionDetails | None = None


@dataclass(frozen=True, slots=True)
class CreateMasterEditionV3:
    edition: Pubkey
    mint: Pubkey
    update_authority: Pubkey
    mint_authority: Pubkey
    payer: Pubkey
    metadata: Pubkey
    max_supply: int | None
    token_program: Pubkey = TOKEN_PROGRAM


@dataclass(frozen=True, slots=True)
class SignMetadata:
    metadata: Pubkey
    creator: Pubkey


@dataclass(frozen=True, slots=True)
class VerifySizedCollectionItem:
    metadata: Pubkey
    collection_authority: Pubkey
    payer: Pubkey
    collection_mint: Pubkey
    collection_metadata: Pubkey
    collection_master_edition: Pubkey
    collection_authority_record: Pubkey | None = None


@dataclass(frozen=True, slots=True)
class BurnNft:
    metadata: Pubkey
    owner: Pubkey
    mint: Pubkey
    token_account: Pubkey
    master_edition: Pubkey
    collection_metadata: Pubkey | None = None
    token_program: Pubkey = TOKEN_PROGRAM


@dataclass(frozen=True, slots=True)
class OtherMetadataInstruction:
    kind: int
    accounts: tuple[Pubkey, ...]
    data: bytes


MetaplexIx = (
    CreateMetadataAccountV3
    | CreateMasterEditionV3
    | SignMetadata
    | VerifySizedCollectionItem
    | BurnNft
)


def _m(key: Pubkey, *, signer: bool = False, writable: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


def validate_data(data: DataV2) -> None:
    """The program's limits, checked before a transaction is built rather than after it fails."""
    for field, value, limit in (
        ("name", data.name, MAX_NAME),
        ("symbol", data.symbol, MAX_SYMBOL),
        ("uri", data.uri, MAX_URI),
    ):
        if len(value.encode("utf-8")) > limit:
            raise InputError(
                f"metadata {field} is longer than {limit} bytes", details={field: value}
            )
    if not 0 <= data.seller_fee_basis_points <= 10_000:
        raise InputError("seller_fee_basis_points must be between 0 and 10000")
    if data.creators is not None:
        if not 0 < len(data.creators) <= MAX_CREATORS:
            raise InputError(f"metadata needs 1 to {MAX_CREATORS} creators when creators are given")
        if sum(c.share for c in data.creators) != 100:
            raise InputError("creator shares must add up to 100")
        if len({c.address for c in data.creators}) != len(data.creators):
            raise InputError("a creator is listed twice")


def _data_v2(d: DataV2) -> bytes:
    return (
        borsh.string(d.name)
        + borsh.string(d.symbol)
        + borsh.string(d.uri)
        + borsh.u16(d.seller_fee_basis_points)
        + borsh.option(d.creators, lambda cs: borsh.vec(cs, _creator))
        + borsh.option(d.collection, _collection)
        + borsh.option(d.uses, _uses)
    )


def encode(ix: MetaplexIx) -> Instruction:
    """Build one Token Metadata instruction (optional trailing accounts are omitted when unset,
    which the program reads as absent)."""
    match ix:
        case CreateMetadataAccountV3():
            validate_data(ix.data)
            for c in ix.data.creators or ():
                if c.verified and not (
                    c.address == ix.update_authority and ix.update_authority_is_signer
                ):
                    raise InputError(
                        "a creator can be verified at creation only if it is the update "
                        "authority and signs",
                        details={"creator": str(c.address)},
                    )
            data = (
                bytes([InstructionType.CREATE_METADATA_ACCOUNT_V3])
                + _data_v2(ix.data)
                + borsh.boolean(ix.is_mutable)
                + borsh.option(ix.collection_details, _collection_details)
            )
            metas = [
                _m(ix.metadata, writable=True),
                _m(ix.mint),
                _m(ix.mint_authority, signer=True),
                _m(ix.payer, signer=True, writable=True),
                _m(ix.update_authority, signer=ix.update_authority_is_signer),
                _m(SYSTEM_PROGRAM),
            ]
        case CreateMasterEditionV3():
            data = bytes([InstructionType.CREATE_MASTER_EDITION_V3]) + borsh.option(
                ix.max_supply, borsh.u64
            )
            metas = [
                _m(ix.edition, writable=True),
                _m(ix.mint, writable=True),
                _m(ix.update_authority, signer=True),
                _m(ix.mint_authority, signer=True),
                _m(ix.payer, signer=True, writable=True),
                _m(ix.metadata, writable=True),
                _m(ix.token_program),
                _m(SYSTEM_PROGRAM),
            ]
        case SignMetadata():
            data = bytes([InstructionType.SIGN_METADATA])
            metas = [_m(ix.metadata, writable=True), _m(ix.creator, signer=True)]
        case VerifySizedCollectionItem():
            data = bytes([InstructionType.VERIFY_SIZED_COLLECTION_ITEM])
            metas = [
                _m(ix.metadata, writable=True),
                _m(ix.collection_authority, signer=True),
                _m(ix.payer, signer=True, writable=True),
                _m(ix.collection_mint),
                _m(ix.collection_metadata, writable=True),
                _m(ix.collection_master_edition),
            ]
            if ix.collection_authority_record is not None:
                metas.append(_m(ix.collection_authority_record))
        case BurnNft():
            data = bytes([InstructionType.BURN_NFT])
            metas = [
                _m(ix.metadata, writable=True),
                _m(ix.owner, signer=True, writable=True),
                _m(ix.mint, writable=True),
                _m(ix.token_account, writable=True),
                _m(ix.master_edition, writable=True),
                _m(ix.token_program),
            ]
            if ix.collection_metadata is not None:
                metas.append(_m(ix.collection_metadata, writable=True))
    return Instruction(TOKEN_METADATA_PROGRAM, data, metas)


def _need(accounts: Sequence[Pubkey], n: int, what: str) -> None:
    if len(accounts) < n:
        raise CodecError(
            f"{what} needs {n} accounts, got {len(accounts)}",
            details={"instruction": what, "accounts": len(accounts)},
        )


def _optional(accounts: Sequence[Pubkey], index: int) -> Pubkey | None:
    """An optional trailing account: absent, or the program id that the official clients send
    in its place when it is not set (the program reads that as none)."""
    if len(accounts) <= index or accounts[index] == TOKEN_METADATA_PROGRAM:
        return None
    return accounts[index]


def _read_data_v2(r: borsh.Reader) -> DataV2:
    return DataV2(
        name=r.string("name"),
        symbol=r.string("symbol"),
        uri=r.string("uri"),
        seller_fee_basis_points=r.u16("seller_fee_basis_points"),
        creators=r.option(lambda: tuple(r.vec(lambda: _read_creator(r), "creators")), "creators"),
        collection=r.option(lambda: _read_collection(r), "collection"),
        uses=r.option(lambda: _read_uses(r), "uses"),
    )


def decode(
    accounts: Sequence[Pubkey], data: bytes, signers: Sequence[bool] | None = None
) -> MetaplexIx | OtherMetadataInstruction:
    """Decode one Token Metadata instruction. ``signers`` (one flag per account, when known)
    tells whether the update authority signed CreateMetadataAccountV3."""
    r = borsh.Reader(data, "metadata instruction")
    tag = r.u8("instruction")
    acc = tuple(accounts)
    out: MetaplexIx
    if tag == InstructionType.CREATE_METADATA_ACCOUNT_V3:
        _need(acc, 6, "CreateMetadataAccountV3")
        body = _read_data_v2(r)
        mutable = r.boolean("is_mutable")
        details = r.option(lambda: _read_collection_details(r), "collection_details")
        signed = bool(signers[4]) if signers is not None and len(signers) > 4 else False
        out = CreateMetadataAccountV3(
            acc[0], acc[1], acc[2], acc[3], acc[4], signed, body, mutable, details
        )
    elif tag == InstructionType.CREATE_MASTER_EDITION_V3:
        _need(acc, 8, "CreateMasterEditionV3")
        max_supply = r.option(lambda: r.u64("max_supply"), "max_supply")
        out = CreateMasterEditionV3(
            acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], max_supply, acc[6]
        )
    elif tag == InstructionType.SIGN_METADATA:
        _need(acc, 2, "SignMetadata")
        out = SignMetadata(acc[0], acc[1])
    elif tag == InstructionType.VERIFY_SIZED_COLLECTION_ITEM:
        _need(acc, 6, "VerifySizedCollectionItem")
        record = _optional(acc, 6)
        out = VerifySizedCollectionItem(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], record)
    elif tag == InstructionType.BURN_NFT:
        _need(acc, 6, "BurnNft")
        collection = _optional(acc, 6)
        out = BurnNft(acc[0], acc[1], acc[2], acc[3], acc[4], collection, acc[5])
    else:
        return OtherMetadataInstruction(tag, acc, bytes(data))
    # The program Borsh-deserialises the whole instruction: trailing bytes are rejected there.
    r.end()
    return out
