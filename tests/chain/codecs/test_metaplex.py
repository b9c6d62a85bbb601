"""Metaplex Token Metadata codec: byte-exact instruction vectors derived from the program's
published Borsh layouts, account round trips, lenient tails, and real mainnet accounts."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from chain.codecs import decode_instruction, metaplex
from chain.codecs.metaplex import (
    Collection,
    CollectionDetails,
    Creator,
    DataV2,
    Metadata,
    ProgrammableConfig,
    TokenStandard,
    UseMethod,
    Uses,
)
from chain.programs import SYSTEM_PROGRAM, TOKEN_METADATA_PROGRAM, TOKEN_PROGRAM
from core.errors import CodecError, InputError
from tests.das_fixtures import das_case, das_cases

keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


def _fixture_accounts(role: str) -> list[dict[str, object]]:
    out = []
    for name in das_cases():
        case = das_case(name)
        for step in case["steps"]:
            out += [a for a in step["accounts"] if a["role"] == role]
    return out


# --- PDAs --------------------------------------------------------------------------------------


def test_metadata_pda_matches_real_accounts() -> None:
    """Every fixture metadata account lives at the PDA of the mint it names."""
    metas = _fixture_accounts("metadata")
    assert len(metas) >= 10
    for acc in metas:
        meta = metaplex.decode_metadata(base64.b64decode(str(acc["data_base64"])))
        assert metaplex.metadata_pda(meta.mint) == Pubkey.from_string(str(acc["pubkey"]))


def test_master_edition_pda_seeds() -> None:
    mint = Pubkey.new_unique()
    expected, _ = Pubkey.find_program_address(
        [b"metadata", bytes(TOKEN_METADATA_PROGRAM), bytes(mint), b"edition"],
        TOKEN_METADATA_PROGRAM,
    )
    assert metaplex.master_edition_pda(mint) == expected
    assert metaplex.master_edition_pda(mint) != metaplex.metadata_pda(mint)


# --- instructions: byte-exact vectors ------------------------------------------------------------

A, B, C, D, E, F = (Pubkey.from_bytes(bytes([i]) * 32) for i in range(1, 7))


def test_create_metadata_account_v3_vector() -> None:
    uri = "https://aiw3.test/1.json"
    ix = metaplex.encode(
        metaplex.CreateMetadataAccountV3(
            metadata=A,
            mint=B,
            mint_authority=C,
            payer=C,
            update_authority=C,
            update_authority_is_signer=True,
            data=DataV2("AIW3 L1", "AIW3", uri, 0, (Creator(C, True, 100),), Collection(False, D)),
            is_mutable=True,
        )
    )
    # discriminator 33 | DataV2{name, symbol, uri, fee u16, Some(vec[creator]), Some(collection),
    # None uses} | is_mutable | None collection_details
    expected = (
        bytes([33])
        + _s("AIW3 L1")
        + _s("AIW3")
        + _s(uri)
        + struct.pack("<H", 0)
        + b"\x01"
        + struct.pack("<I", 1)
        + bytes([3]) * 32
        + b"\x01"
        + bytes([100])
        + b"\x01"
        + b"\x00"
        + bytes([4]) * 32
        + b"\x00"
        + b"\x01"
        + b"\x00"
    )
    assert bytes(ix.data) == expected
    assert ix.program_id == TOKEN_METADATA_PROGRAM
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts] == [
        (A, False, True),
        (B, False, False),
        (C, True, False),
        (C, True, True),
        (C, True, False),
        (SYSTEM_PROGRAM, False, False),
    ]
    decoded = decode_instruction(
        ix.program_id,
        [m.pubkey for m in ix.accounts],
        ix.data,
        [m.is_signer for m in ix.accounts],
    )
    assert isinstance(decoded, metaplex.CreateMetadataAccountV3)
    assert decoded.update_authority_is_signer is True
    assert metaplex.encode(decoded) == ix


def test_creator_verified_only_when_update_authority_signs() -> None:
    base = metaplex.CreateMetadataAccountV3(
        A, B, C, C, C, False, DataV2("n", "s", "u", 0, (Creator(C, True, 100),)), True
    )
    with pytest.raises(InputError, match="verified"):
        metaplex.encode(base)
    other = metaplex.CreateMetadataAccountV3(
        A, B, C, C, C, True, DataV2("n", "s", "u", 0, (Creator(D, True, 100),)), True
    )
    with pytest.raises(InputError, match="verified"):
        metaplex.encode(other)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (DataV2("x" * 33, "s", "u", 0, None), "name"),
        (DataV2("n", "s" * 11, "u", 0, None), "symbol"),
        (DataV2("n", "s", "u" * 201, 0, None), "uri"),
        (DataV2("n", "s", "u", 0, (Creator(C, False, 50),)), "100"),
        (DataV2("n", "s", "u", 0, tuple(Creator(k, False, 20) for k in (A,) * 5)), "twice"),
        (DataV2("n", "s", "u", 0, tuple(Creator(C, False, 0) for _ in range(6))), "creators"),
        (DataV2("n", "s", "u", 10_001, None), "seller_fee"),
    ],
)
def test_program_limits_are_checked_before_building(data: DataV2, match: str) -> None:
    with pytest.raises(InputError, match=match):
        metaplex.encode(metaplex.CreateMetadataAccountV3(A, B, C, C, C, True, data, True))


def test_create_master_edition_v3_vector() -> None:
    ix = metaplex.encode(metaplex.CreateMasterEditionV3(A, B, C, C, D, E, 0))
    assert bytes(ix.data).hex() == "11" + "01" + "00" * 8
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts] == [
        (A, False, True),
        (B, False, True),
        (C, True, False),
        (C, True, False),
        (D, True, True),
        (E, False, True),
        (TOKEN_PROGRAM, False, False),
        (SYSTEM_PROGRAM, False, False),
    ]
    unlimited = metaplex.encode(metaplex.CreateMasterEditionV3(A, B, C, C, D, E, None))
    assert bytes(unlimited.data).hex() == "1100"


def test_sign_verify_burn_vectors() -> None:
    sign = metaplex.encode(metaplex.SignMetadata(A, B))
    assert bytes(sign.data) == b"\x07"
    assert [(m.is_signer, m.is_writable) for m in sign.accounts] == [(False, True), (True, False)]

    verify = metaplex.encode(metaplex.VerifySizedCollectionItem(A, B, C, D, E, F))
    assert bytes(verify.data) == bytes([30])
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in verify.accounts] == [
        (A, False, True),
        (B, True, False),
        (C, True, True),
        (D, False, False),
        (E, False, True),
        (F, False, False),
    ]

    burn = metaplex.encode(metaplex.BurnNft(A, B, C, D, E, F))
    assert bytes(burn.data) == bytes([29])
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in burn.accounts] == [
        (A, False, True),
        (B, True, True),
        (C, False, True),
        (D, False, True),
        (E, False, True),
        (TOKEN_PROGRAM, False, False),
        (F, False, True),
    ]


names = st.text(max_size=8)
creators = st.lists(
    st.builds(Creator, keys, st.just(False), st.just(20)),
    min_size=5,
    max_size=5,
    unique_by=lambda c: c.address,
).map(tuple)
data_v2 = st.builds(
    DataV2,
    names,
    st.text(max_size=2),
    names,
    st.integers(0, 10_000),
    st.none() | creators,
    st.none() | st.builds(Collection, st.booleans(), keys),
    st.none() | st.builds(Uses, st.sampled_from(UseMethod), st.integers(0, 9), st.integers(0, 9)),
)
metaplex_ixs = st.one_of(
    st.builds(
        metaplex.CreateMetadataAccountV3,
        keys,
        keys,
        keys,
        keys,
        keys,
        st.booleans(),
        data_v2,
        st.booleans(),
        st.none() | st.builds(CollectionDetails, st.just(0), st.integers(0, 2**64 - 1)),
    ),
    st.builds(
        metaplex.CreateMasterEditionV3,
        keys,
        keys,
        keys,
        keys,
        keys,
        keys,
        st.none() | st.integers(0, 2**64 - 1),
    ),
    st.builds(metaplex.SignMetadata, keys, keys),
    st.builds(
        metaplex.VerifySizedCollectionItem, keys, keys, keys, keys, keys, keys, st.none() | keys
    ),
    st.builds(metaplex.BurnNft, keys, keys, keys, keys, keys, st.none() | keys),
)


@settings(max_examples=150)
@given(metaplex_ixs)
def test_instruction_round_trip(ix: metaplex.MetaplexIx) -> None:
    built = metaplex.encode(ix)
    accounts = [m.pubkey for m in built.accounts]
    flags = [m.is_signer for m in built.accounts]
    assert metaplex.decode(accounts, bytes(built.data), flags) == ix
    with pytest.raises(CodecError):
        metaplex.decode(accounts, bytes(built.data) + b"\x00", flags)
    if len(built.data) > 1:
        with pytest.raises(CodecError):
            metaplex.decode(accounts, bytes(built.data)[:-1], flags)
    with pytest.raises(CodecError):
        metaplex.decode(accounts[:2] if len(accounts) > 2 else [], bytes(built.data), flags)


# --- accounts ----------------------------------------------------------------------------------

metadata_accounts = st.builds(
    Metadata,
    st.just(4),
    keys,
    keys,
    # Within the program's limits in UTF-8 bytes (it refuses longer), as padding assumes.
    st.text(max_size=10).map(lambda t: t.rstrip("\x00")).filter(lambda t: len(t.encode()) <= 32),
    st.text(max_size=3).map(lambda t: t.rstrip("\x00")).filter(lambda t: len(t.encode()) <= 10),
    st.text(max_size=50).map(lambda t: t.rstrip("\x00")),
    st.integers(0, 10_000),
    st.none() | creators,
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(0, 255),
    st.none() | st.sampled_from(TokenStandard),
    st.none() | st.builds(Collection, st.booleans(), keys),
    st.none() | st.builds(Uses, st.sampled_from(UseMethod), st.integers(0, 9), st.integers(0, 9)),
    st.none() | st.builds(CollectionDetails, st.just(0), st.integers(0, 99)),
    st.none() | st.builds(ProgrammableConfig, st.none() | keys),
)


@settings(max_examples=150)
@given(metadata_accounts, st.booleans())
def test_metadata_account_round_trip(meta: Metadata, pad: bool) -> None:
    raw = metaplex.encode_metadata(meta, pad=pad)
    assert metaplex.decode_metadata(raw) == meta
    if pad:
        assert len(raw) == metaplex.MAX_METADATA_LEN
        if meta.creators:
            # Padded strings put the first creator at a fixed offset (a memcmp filter target).
            assert raw[326 : 326 + 32] == bytes(meta.creators[0].address)


def _head_len(meta: Metadata) -> int:
    """Bytes through edition_nonce: the encoding without its five tail options (one byte each
    when absent)."""
    bare = dataclasses.replace(
        meta,
        token_standard=None,
        collection=None,
        uses=None,
        collection_details=None,
        programmable_config=None,
    )
    return len(metaplex.encode_metadata(bare, pad=False)) - 5


@given(metadata_accounts)
def test_metadata_head_must_be_complete(meta: Metadata) -> None:
    raw = metaplex.encode_metadata(meta, pad=False)
    with pytest.raises(CodecError):
        metaplex.decode_metadata(raw[: _head_len(meta) - 1])


@given(metadata_accounts)
def test_metadata_tail_is_lenient_like_the_program(meta: Metadata) -> None:
    raw = metaplex.encode_metadata(meta, pad=False)
    head = _head_len(meta)
    # An old account that ends right after edition_nonce has no tail fields.
    old = metaplex.decode_metadata(raw[:head])
    assert (old.token_standard, old.collection, old.uses) == (None, None, None)
    assert old.name == meta.name
    assert old.creators == meta.creators
    # A corrupt token standard clears token_standard, collection and uses together.
    if meta.token_standard is not None:
        got = metaplex.decode_metadata(raw[:head] + b"\x01\x09" + raw[head + 2 :])
        assert (got.token_standard, got.collection, got.uses) == (None, None, None)


def test_wrong_account_key_is_refused() -> None:
    with pytest.raises(CodecError, match="key"):
        metaplex.decode_metadata(b"\x06" + bytes(300))
    with pytest.raises(CodecError):
        metaplex.decode_metadata(b"")


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with contextlib.suppress(CodecError):
        metaplex.decode_metadata(b"\x04" + raw)
    with contextlib.suppress(CodecError):
        metaplex.decode_master_edition(b"\x06" + raw)
    for key in (b"\x01", b"\x02", b"\x06", raw[:1]):
        with contextlib.suppress(CodecError):
            metaplex.decode_edition(key + raw)


def test_master_edition_round_trip() -> None:
    edition = metaplex.MasterEdition(6, 0, 0)
    raw = metaplex.encode_master_edition(edition)
    assert len(raw) == metaplex.MAX_MASTER_EDITION_LEN
    assert raw[:11] == b"\x06" + bytes(8) + b"\x01" + b"\x00"
    assert metaplex.decode_master_edition(raw) == edition


@given(
    st.integers(0, 2**64 - 1),
    st.none() | st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1),
)
def test_whatever_sits_at_the_edition_pda_decodes_by_its_key(
    supply: int, max_supply: int | None, parent: bytes, number: int
) -> None:
    master = metaplex.MasterEdition(6, supply, max_supply)
    assert metaplex.decode_edition(metaplex.encode_master_edition(master)) == master
    # A print: key 1, the parent's (master edition) address, its number; 241 bytes.
    edition = metaplex.Edition(1, Pubkey.from_bytes(parent), number)
    raw = metaplex.encode_edition(edition)
    assert len(raw) == metaplex.MAX_EDITION_LEN
    assert raw[:33] == b"\x01" + parent
    assert metaplex.decode_edition(raw) == edition
    # The V1 master edition old NFTs carry has the same head.
    v1 = b"\x02" + metaplex.encode_master_edition(master)[1:]
    assert metaplex.decode_edition(v1) == metaplex.MasterEdition(2, supply, max_supply)
    with pytest.raises(CodecError, match="not a master or print edition"):
        metaplex.decode_edition(b"\x04" + raw[1:])


def test_real_padded_and_unpadded_accounts_decode() -> None:
    """Mainnet accounts: 679-byte padded ones and the 438-byte re-serialised one."""
    sizes = set()
    for acc in _fixture_accounts("metadata"):
        raw = base64.b64decode(str(acc["data_base64"]))
        sizes.add(len(raw))
        meta = metaplex.decode_metadata(raw)
        assert "\x00" not in meta.name + meta.symbol + meta.uri
        assert meta.uri.startswith("https://")
    assert {679, 438} <= sizes


def test_program_id_in_an_optional_slot_means_absent() -> None:
    # The official (kinobi) clients always send the optional account and put the Token
    # Metadata program id there when it is not set; the program reads that as "none"
    # (next_optional_account_info). The program id is never a metadata account or a record.
    verify = metaplex.encode(metaplex.VerifySizedCollectionItem(A, B, C, D, E, F))
    keys = [m.pubkey for m in verify.accounts] + [TOKEN_METADATA_PROGRAM]
    decoded = decode_instruction(TOKEN_METADATA_PROGRAM, keys, bytes(verify.data))
    assert decoded == metaplex.VerifySizedCollectionItem(A, B, C, D, E, F, None)
    burn = metaplex.encode(metaplex.BurnNft(A, B, C, D, E))
    keys = [m.pubkey for m in burn.accounts] + [TOKEN_METADATA_PROGRAM]
    decoded = decode_instruction(TOKEN_METADATA_PROGRAM, keys, bytes(burn.data))
    assert decoded == metaplex.BurnNft(A, B, C, D, E, None)
