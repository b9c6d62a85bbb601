"""Token-2022 TLV extensions and interface instructions: round trips, strictness, and the real
program (LiteSVM) as the judge of the byte layouts."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata

from chain.codecs import decode_compiled, spl_token, token2022
from chain.codecs.spl_token import AccountState, MintState, TokenAccountState
from chain.codecs.token2022 import (
    Account2022,
    BaseField,
    GroupMemberPointer,
    GroupPointer,
    ImmutableOwner,
    MetadataPointer,
    Mint2022,
    TokenGroup,
    TokenGroupMember,
    TokenMetadata,
    UnknownExtension,
)
from chain.programs import TOKEN_2022_PROGRAM
from core.errors import CodecError

_DECODED = {3, 6, 7, 9, 12, 14, 18, 19, 20, 21, 22, 23}
_OPAQUE = [t for t in range(1, 28) if t not in _DECODED]
keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)
maybe_key = st.none() | keys.filter(lambda k: bytes(k) != bytes(32))
u64 = st.integers(0, 2**64 - 1)
text = st.text(max_size=40)

metadata = st.builds(
    TokenMetadata,
    maybe_key,
    keys,
    text,
    text,
    text,
    st.lists(st.tuples(text, text), max_size=3).map(tuple),
)
extensions = st.one_of(
    st.builds(MetadataPointer, maybe_key, maybe_key),
    st.builds(GroupPointer, maybe_key, maybe_key),
    st.builds(GroupMemberPointer, maybe_key, maybe_key),
    st.builds(TokenGroup, maybe_key, keys, u64, u64),
    st.builds(TokenGroupMember, keys, keys, u64),
    metadata,
    st.just(ImmutableOwner()),
    st.builds(token2022.MintCloseAuthority, maybe_key),
    st.builds(token2022.PermanentDelegate, maybe_key),
    st.builds(token2022.TransferHook, maybe_key, maybe_key),
    st.just(token2022.NonTransferable()),
    st.builds(token2022.DefaultAccountState, st.sampled_from(AccountState)),
    # Types the program defines but the codec keeps as bytes, and types it does not define.
    st.builds(UnknownExtension, st.sampled_from(_OPAQUE), st.binary(max_size=20)),
    st.builds(UnknownExtension, st.integers(28, 200), st.binary(max_size=20)),
)
mint_states = st.builds(MintState, maybe_key, u64, st.integers(0, 255), st.just(True), maybe_key)


@settings(max_examples=150)
@given(mint_states, st.lists(extensions, max_size=5))
def test_mint_with_extensions_round_trip(base: MintState, exts: list[token2022.Extension]) -> None:
    mint = Mint2022(base, tuple(exts))
    raw = token2022.encode_mint(mint)
    assert token2022.decode_mint(raw) == mint
    assert token2022.decode_mint_base(raw) == base
    assert len(raw) == token2022.mint_size(exts)


@given(
    st.builds(
        TokenAccountState,
        keys,
        keys,
        u64,
        maybe_key,
        st.sampled_from(AccountState),
        st.none() | u64,
        u64,
        maybe_key,
    ),
    st.lists(extensions, max_size=3),
)
def test_account_with_extensions_round_trip(
    base: TokenAccountState, exts: list[token2022.Extension]
) -> None:
    account = Account2022(base, tuple(exts))
    assert token2022.decode_account(token2022.encode_account(account)) == account
    assert token2022.decode_account_base(token2022.encode_account(account)) == base


@given(metadata)
def test_token_metadata_is_strict(meta: TokenMetadata) -> None:
    raw = token2022.encode_token_metadata(meta)
    assert token2022.decode_token_metadata(raw) == meta
    with pytest.raises(CodecError):
        token2022.decode_token_metadata(raw[:-1])
    with pytest.raises(CodecError):
        token2022.decode_token_metadata(raw + b"\x00")


def test_fixed_size_extension_with_wrong_length_is_refused() -> None:
    base = spl_token.encode_mint(MintState(None, 1, 0, True, None))
    raw = base + bytes(165 - 82) + b"\x01" + (18).to_bytes(2, "little") + (63).to_bytes(2, "little")
    with pytest.raises(CodecError, match="must be 64 bytes"):
        token2022.decode_mint(raw + bytes(63))


def test_wrong_account_type_and_padding_are_refused() -> None:
    mint = Mint2022(MintState(None, 1, 0, True, None), (MetadataPointer(None, None),))
    raw = bytearray(token2022.encode_mint(mint))
    raw[165] = 2
    with pytest.raises(CodecError, match="account type"):
        token2022.decode_mint(bytes(raw))
    raw[165] = 1
    raw[100] = 7
    with pytest.raises(CodecError, match="padding"):
        token2022.decode_mint(bytes(raw))
    with pytest.raises(CodecError):
        token2022.decode_mint(bytes(raw[:120]))


def test_tlv_overrunning_the_account_is_refused() -> None:
    mint = Mint2022(MintState(None, 1, 0, True, None), (MetadataPointer(None, None),))
    raw = token2022.encode_mint(mint)
    with pytest.raises(CodecError):
        token2022.decode_mint(raw[:-10])
    # The base-only decoder does not look at the extensions.
    assert token2022.decode_mint_base(raw[:-10]) == mint.base


def test_base_decoders_check_the_account_type_and_padding() -> None:
    mint = Mint2022(MintState(None, 1, 0, True, None), (MetadataPointer(None, None),))
    raw = bytearray(token2022.encode_mint(mint))
    with pytest.raises(CodecError, match="account type"):
        token2022.decode_account_base(bytes(raw))
    raw[100] = 7
    with pytest.raises(CodecError, match="padding"):
        token2022.decode_mint_base(bytes(raw))
    with pytest.raises(CodecError):
        token2022.decode_mint_base(bytes(raw[:120]))


@given(st.binary(min_size=0, max_size=400))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    for fn in (token2022.decode_mint, token2022.decode_account):
        with contextlib.suppress(CodecError):
            fn(raw)
    # Whatever decodes in full has the same base when decoded base-only.
    for full, base_only in (
        (token2022.decode_mint, token2022.decode_mint_base),
        (token2022.decode_account, token2022.decode_account_base),
    ):
        try:
            expected = full(raw).base
        except CodecError:
            with contextlib.suppress(CodecError):
                base_only(raw)
        else:
            assert base_only(raw) == expected
    tail = spl_token.encode_mint(MintState(None, 1, 0, True, None)) + bytes(83) + b"\x01" + raw
    with contextlib.suppress(CodecError):
        token2022.decode_mint(tail)


# --- instructions ------------------------------------------------------------------------------


def test_interface_discriminators_are_the_published_sha256_prefixes() -> None:
    # Vectors: first 8 bytes of sha256("<namespace>:<name>"), as the interface crates define.
    for preimage, disc in (
        ("spl_token_metadata_interface:initialize_account", token2022.METADATA_INITIALIZE),
        ("spl_token_metadata_interface:updating_field", token2022.METADATA_UPDATE_FIELD),
        ("spl_token_metadata_interface:update_the_authority", token2022.METADATA_UPDATE_AUTHORITY),
        ("spl_token_metadata_interface:remove_key_ix", token2022.METADATA_REMOVE_KEY),
        ("spl_token_group_interface:initialize_token_group", token2022.GROUP_INITIALIZE),
        ("spl_token_group_interface:initialize_member", token2022.GROUP_INITIALIZE_MEMBER),
        ("spl_token_group_interface:update_group_max_size", token2022.GROUP_UPDATE_MAX_SIZE),
        ("spl_token_group_interface:update_authority", token2022.GROUP_UPDATE_AUTHORITY),
    ):
        assert disc == hashlib.sha256(preimage.encode()).digest()[:8]
    assert token2022.METADATA_INITIALIZE.hex() == "d2e11ea258b84d8d"
    assert token2022.METADATA_UPDATE_FIELD.hex() == "dde9312db5cadcc8"


fields = st.sampled_from(list(BaseField)) | text
interface_ixs = st.one_of(
    st.builds(token2022.InitializeMetadataPointer, keys, maybe_key, maybe_key),
    st.builds(token2022.InitializeGroupPointer, keys, maybe_key, maybe_key),
    st.builds(token2022.InitializeGroupMemberPointer, keys, maybe_key, maybe_key),
    st.builds(token2022.MetadataInitialize, keys, keys, keys, keys, text, text, text),
    st.builds(token2022.MetadataUpdateField, keys, keys, fields, text),
    st.builds(token2022.MetadataUpdateAuthority, keys, keys, maybe_key),
    st.builds(token2022.MetadataRemoveKey, keys, keys, text, st.booleans()),
    st.builds(token2022.GroupInitialize, keys, keys, keys, maybe_key, u64),
    st.builds(token2022.GroupInitializeMember, keys, keys, keys, keys, keys),
    st.builds(token2022.GroupUpdateMaxSize, keys, keys, u64),
    st.builds(token2022.GroupUpdateAuthority, keys, keys, maybe_key),
    st.builds(token2022.UpdateMetadataPointer, keys, keys, maybe_key),
    st.builds(token2022.UpdateGroupMemberPointer, keys, keys, maybe_key),
    st.builds(token2022.InitializeMintCloseAuthority, keys, st.none() | keys),
    st.builds(token2022.InitializePermanentDelegate, keys, keys),
    st.builds(token2022.InitializeNonTransferableMint, keys),
    st.builds(token2022.InitializeTransferHook, keys, maybe_key, maybe_key),
    st.builds(token2022.InitializeDefaultAccountState, keys, st.sampled_from(AccountState)),
)


@settings(max_examples=200)
@given(interface_ixs)
def test_interface_instruction_round_trip(ix: token2022.Token2022Ix) -> None:
    built = token2022.encode(ix)
    assert built.program_id == TOKEN_2022_PROGRAM
    assert token2022.decode([m.pubkey for m in built.accounts], bytes(built.data)) == ix


@given(
    interface_ixs.filter(lambda ix: token2022.is_interface_instruction(token2022.encode(ix).data))
)
def test_interface_instruction_trailing_or_missing_bytes(ix: token2022.Token2022Ix) -> None:
    built = token2022.encode(ix)
    accounts = [m.pubkey for m in built.accounts]
    with pytest.raises(CodecError):
        token2022.decode(accounts, bytes(built.data) + b"\x00")
    if len(built.data) > 8:
        with pytest.raises(CodecError):
            token2022.decode(accounts, bytes(built.data)[:-1])


def test_extension_instructions_have_the_program_tags() -> None:
    m, k = Pubkey.new_unique(), Pubkey.new_unique()
    for ix, head in (
        (token2022.InitializeMintCloseAuthority(m, k), bytes([25, 1])),
        (token2022.InitializeMintCloseAuthority(m, None), bytes([25, 0])),
        (token2022.InitializeDefaultAccountState(m, AccountState.FROZEN), bytes([28, 0, 2])),
        (token2022.InitializeNonTransferableMint(m), bytes([32])),
        (token2022.InitializePermanentDelegate(m, k), bytes([35])),
        (token2022.InitializeTransferHook(m, k, k), bytes([36, 0])),
        (token2022.UpdateMetadataPointer(m, k, k), bytes([39, 1])),
        (token2022.UpdateGroupMemberPointer(m, k, k), bytes([41, 1])),
    ):
        assert bytes(token2022.encode(ix).data).startswith(head)
    with pytest.raises(CodecError, match="default account state 3"):
        token2022.decode([m], bytes([28, 0, 3]))
    with pytest.raises(CodecError, match="default account state 9"):
        token2022.decode_extension(token2022.ExtensionType.DEFAULT_ACCOUNT_STATE, b"\x09")


def test_extension_names_are_the_programs() -> None:
    assert token2022.extension_name(12) == "PermanentDelegate"
    assert token2022.extension_name(25) == "ScaledUiAmountConfig"
    assert token2022.extension_name(26) == "PausableConfig"
    assert token2022.extension_name(1) == "TransferFeeConfig"
    assert token2022.extension_name(999) == "Unknown(999)"
    assert UnknownExtension(16, b"").name == "ConfidentialTransferFeeConfig"
    mint = Mint2022(
        MintState(None, 1, 0, True, None),
        (MetadataPointer(None, None), token2022.NonTransferable(), UnknownExtension(99, b"")),
    )
    assert mint.names() == ("MetadataPointer", "NonTransferable", "Unknown(99)")


def test_update_field_key_named_like_a_base_field_stays_a_key() -> None:
    a, b = Pubkey.new_unique(), Pubkey.new_unique()
    as_key = token2022.encode(token2022.MetadataUpdateField(a, b, "name", "x"))
    as_base = token2022.encode(token2022.MetadataUpdateField(a, b, BaseField.NAME, "x"))
    assert as_key.data != as_base.data
    assert token2022.decode([a, b], bytes(as_key.data)).field == "name"  # type: ignore[union-attr]


# --- the real program is the judge ------------------------------------------------------------


def _send(svm: LiteSVM, payer: Keypair, ixs: list, signers: list[Keypair]) -> object:  # type: ignore[type-arg]
    msg = Message.new_with_blockhash(ixs, payer.pubkey(), svm.latest_blockhash())
    tx = Transaction(signers, msg, svm.latest_blockhash())
    result = svm.send_transaction(tx)
    assert not isinstance(result, FailedTransactionMetadata), result
    return result


def test_layouts_agree_with_token_2022_on_litesvm() -> None:
    svm = LiteSVM()
    payer, mint = Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    meta = TokenMetadata(
        payer.pubkey(),
        mint.pubkey(),
        "Codec Test",
        "CT",
        "https://x.test/1.json",
        (("level", "3"),),
    )
    pointer = MetadataPointer(payer.pubkey(), mint.pubkey())
    space = token2022.mint_size([pointer])
    final = space + token2022.tlv_size(meta)
    m, p = mint.pubkey(), payer.pubkey()
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=p,
                to_pubkey=m,
                lamports=svm.minimum_balance_for_rent_exemption(final),
                space=space,
                owner=TOKEN_2022_PROGRAM,
            )
        ),
        token2022.encode(token2022.InitializeMetadataPointer(m, p, m)),
        spl_token.encode(spl_token.InitializeMint2(TOKEN_2022_PROGRAM, m, 0, p, None)),
        token2022.encode(
            token2022.MetadataInitialize(m, p, m, p, meta.name, meta.symbol, meta.uri)
        ),
        token2022.encode(token2022.MetadataUpdateField(m, p, "level", "3")),
    ]
    _send(svm, payer, ixs, [payer, mint])
    account = svm.get_account(m)
    assert account is not None
    decoded = token2022.decode_mint(bytes(account.data))
    assert decoded.base == MintState(p, 0, 0, True, None)
    assert token2022.decode_mint_base(bytes(account.data)) == decoded.base
    assert decoded.get(MetadataPointer) == pointer
    assert decoded.get(TokenMetadata) == meta
    assert decoded.get(TokenMetadata).field("level") == "3"  # type: ignore[union-attr]
    # Our encoder reproduces the program's bytes exactly.
    assert token2022.encode_mint(decoded) == bytes(account.data)


def test_mint_controls_agree_with_token_2022_on_litesvm() -> None:
    """Each control initialised by our encoders is accepted by the program, and the mint it
    writes decodes to exactly those extensions (and re-encodes byte for byte)."""
    svm = LiteSVM()
    payer, mint = Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    m, p = mint.pubkey(), payer.pubkey()
    closer, delegate, hook = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    controls: list[token2022.Extension] = [
        token2022.MintCloseAuthority(closer),
        token2022.PermanentDelegate(delegate),
        token2022.TransferHook(p, hook),
        token2022.NonTransferable(),
        token2022.DefaultAccountState(AccountState.FROZEN),
    ]
    space = token2022.mint_size(controls)
    _send(
        svm,
        payer,
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=p,
                    to_pubkey=m,
                    lamports=svm.minimum_balance_for_rent_exemption(space),
                    space=space,
                    owner=TOKEN_2022_PROGRAM,
                )
            ),
            token2022.encode(token2022.InitializeMintCloseAuthority(m, closer)),
            token2022.encode(token2022.InitializePermanentDelegate(m, delegate)),
            token2022.encode(token2022.InitializeTransferHook(m, p, hook)),
            token2022.encode(token2022.InitializeNonTransferableMint(m)),
            token2022.encode(token2022.InitializeDefaultAccountState(m, AccountState.FROZEN)),
            spl_token.encode(spl_token.InitializeMint2(TOKEN_2022_PROGRAM, m, 0, p, p)),
        ],
        [payer, mint],
    )
    account = svm.get_account(m)
    assert account is not None
    decoded = token2022.decode_mint(bytes(account.data))
    assert decoded.base == MintState(p, 0, 0, True, p)
    assert decoded.extensions == tuple(controls)
    assert token2022.encode_mint(decoded) == bytes(account.data)


def test_inner_instructions_decode_like_top_level_ones() -> None:
    """The ATA program CPIs into Token-2022; its inner instructions decode with the same code."""
    from chain.codecs import ata

    svm = LiteSVM()
    payer, mint = Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    m, p = mint.pubkey(), payer.pubkey()
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=p,
                to_pubkey=m,
                lamports=svm.minimum_balance_for_rent_exemption(82),
                space=82,
                owner=TOKEN_2022_PROGRAM,
            )
        ),
        spl_token.encode(spl_token.InitializeMint2(TOKEN_2022_PROGRAM, m, 0, p, None)),
        ata.create(p, p, m, TOKEN_2022_PROGRAM),
    ]
    msg = Message.new_with_blockhash(ixs, p, svm.latest_blockhash())
    tx = Transaction([payer, mint], msg, svm.latest_blockhash())
    result = svm.send_transaction(tx)
    assert not isinstance(result, FailedTransactionMetadata), result
    keys_ = list(msg.account_keys)
    top = [
        decode_compiled(
            keys_, ci.program_id_index, ci.accounts, ci.data, msg.header.num_required_signatures
        )
        for ci in msg.instructions
    ]
    assert isinstance(top[2], ata.CreateAssociatedTokenAccount)
    assert top[2].account == ata.address(p, m, TOKEN_2022_PROGRAM)
    inner = [
        decode_compiled(keys_, ci.program_id_index, ci.accounts, ci.data)
        for group in result.inner_instructions()
        for ci in (ii.instruction() for ii in group)
    ]
    kinds = {type(d).__name__ for d in inner if d is not None}
    # The ATA program asks Token-2022 for the size, sets ImmutableOwner, then InitializeAccount3.
    others = [d for d in inner if isinstance(d, spl_token.OtherTokenInstruction)]
    assert {o.kind for o in others} >= {21, 22, 18}, kinds
    with pytest.raises(CodecError):
        decode_compiled(keys_, 99, b"", b"")


# --- audit against spl-token-2022 ``extension/mod.rs`` ------------------------------------------


def test_two_or_three_trailing_bytes_with_a_type_are_malformed() -> None:
    # get_tlv_data_info: fewer than 2 bytes left is free space, and so is a zero type; a non-zero
    # type without room for its length is InvalidAccountData.
    mint = Mint2022(MintState(None, 1, 0, True, None), (MetadataPointer(None, None),))
    raw = token2022.encode_mint(mint)
    assert token2022.decode_mint(raw + b"\x00").extensions == mint.extensions
    assert token2022.decode_mint(raw + b"\x00\x00\x00").extensions == mint.extensions
    for tail in (b"\x12\x00", b"\x12\x00\x40"):
        with pytest.raises(CodecError):
            token2022.decode_mint(raw + tail)


def test_a_multisig_sized_account_is_never_a_mint_or_token_account() -> None:
    # check_min_len_and_not_multisig: 355 bytes is a multisig, whatever the bytes say.
    state = TokenAccountState(
        Pubkey.new_unique(), Pubkey.new_unique(), 1, None, AccountState.INITIALIZED, None, 0, None
    )
    account = Account2022(state, (ImmutableOwner(), UnknownExtension(200, bytes(181))))
    encoded = token2022.encode_account(account)
    # The encoder, like the program, pads such an account to 357 bytes; it reads back.
    assert len(encoded) == spl_token.MULTISIG_SIZE + 2
    assert token2022.decode_account(encoded) == account
    raw = encoded[: spl_token.MULTISIG_SIZE]
    for decode in (token2022.decode_account, token2022.decode_account_base):
        with pytest.raises(CodecError, match="multisig"):
            decode(raw)


def test_mint_size_skips_the_multisig_length_like_the_program() -> None:
    # adjust_len_for_multisig: an extended account that would be exactly 355 bytes gets 2 more.
    mint = Pubkey.new_unique()
    pointer = MetadataPointer(mint, mint)
    for uri_len in range(0, 12):
        meta = TokenMetadata(mint, mint, "n", "", "u" * uri_len)
        raw_len = token2022.TLV_START + token2022.tlv_size(pointer) + token2022.tlv_size(meta)
        expected = raw_len + 2 if raw_len == spl_token.MULTISIG_SIZE else raw_len
        assert token2022.mint_size([pointer, meta]) == expected
    assert token2022.account_size(spl_token.MULTISIG_SIZE) == spl_token.MULTISIG_SIZE + 2
    assert token2022.account_size(spl_token.MULTISIG_SIZE - 1) == spl_token.MULTISIG_SIZE - 1
