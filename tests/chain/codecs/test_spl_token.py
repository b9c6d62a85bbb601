"""SPL Token instruction and layout codecs: round trips, an independent encoder, strictness."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.token.state import Mint as SoldersMint
from solders.token.state import TokenAccount as SoldersTokenAccount
from spl.token import instructions as spl
from spl.token import models

from chain.codecs import decode_instruction, spl_token
from chain.codecs.spl_token import AccountState, MintState, TokenAccountState
from chain.programs import TOKEN_2022_PROGRAM, TOKEN_PROGRAM
from core.errors import CodecError

keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)
maybe_key = st.none() | keys
programs = st.sampled_from([TOKEN_PROGRAM, TOKEN_2022_PROGRAM])
u64 = st.integers(0, 2**64 - 1)
u8 = st.integers(0, 255)
multisig = st.lists(keys, max_size=3).map(tuple)

instructions = st.one_of(
    st.builds(spl_token.InitializeMint, programs, keys, u8, keys, maybe_key),
    st.builds(spl_token.InitializeMint2, programs, keys, u8, keys, maybe_key),
    st.builds(spl_token.Transfer, programs, keys, keys, keys, u64, multisig),
    st.builds(spl_token.TransferChecked, programs, keys, keys, keys, keys, u64, u8, multisig),
    st.builds(spl_token.MintTo, programs, keys, keys, keys, u64, multisig),
    st.builds(spl_token.MintToChecked, programs, keys, keys, keys, u64, u8, multisig),
    st.builds(spl_token.Burn, programs, keys, keys, keys, u64, multisig),
    st.builds(spl_token.BurnChecked, programs, keys, keys, keys, u64, u8, multisig),
    st.builds(spl_token.CloseAccount, programs, keys, keys, keys, multisig),
    st.builds(spl_token.SetAuthority, programs, keys, st.integers(0, 3), maybe_key, keys, multisig),
    st.builds(spl_token.FreezeAccount, programs, keys, keys, keys, multisig),
    st.builds(spl_token.ThawAccount, programs, keys, keys, keys, multisig),
)


@settings(max_examples=200)
@given(instructions)
def test_instruction_round_trip(ix: spl_token.TokenIx) -> None:
    built = spl_token.encode(ix)
    accounts = [m.pubkey for m in built.accounts]
    assert spl_token.decode(built.program_id, accounts, built.data) == ix
    # The generic dispatcher (used for top-level and inner instructions) agrees.
    assert decode_instruction(built.program_id, accounts, built.data) == ix


@settings(max_examples=100)
@given(instructions, st.data())
def test_truncated_data_is_a_codec_error(ix: spl_token.TokenIx, data: st.DataObject) -> None:
    built = spl_token.encode(ix)
    accounts = [m.pubkey for m in built.accounts]
    # Every field of these instructions is required (including the trailing option tag).
    cut = data.draw(st.integers(0, len(built.data) - 1))
    with pytest.raises(CodecError):
        spl_token.decode(built.program_id, accounts, bytes(built.data)[:cut])


@given(instructions)
def test_missing_accounts_is_a_codec_error(ix: spl_token.TokenIx) -> None:
    built = spl_token.encode(ix)
    with pytest.raises(CodecError):
        spl_token.decode(built.program_id, [], built.data)


@settings(max_examples=50)
@given(keys, keys, keys, u64, u8)
def test_matches_solana_py_encoder(
    source: Pubkey, mint: Pubkey, owner: Pubkey, amount: int, decimals: int
) -> None:
    """solana-py's ``spl.token`` is an independent implementation of the same layouts."""
    pid = TOKEN_PROGRAM
    pairs: list[tuple[spl_token.TokenIx, Instruction]] = [
        (
            spl_token.TransferChecked(pid, source, mint, owner, source, amount, decimals),
            spl.transfer_checked(
                models.TransferCheckedParams(
                    program_id=pid,
                    source=source,
                    mint=mint,
                    dest=owner,
                    owner=source,
                    amount=amount,
                    decimals=decimals,
                )
            ),
        ),
        (
            spl_token.MintTo(pid, mint, source, owner, amount),
            spl.mint_to(
                models.MintToParams(
                    program_id=pid, mint=mint, dest=source, mint_authority=owner, amount=amount
                )
            ),
        ),
        (
            spl_token.BurnChecked(pid, source, mint, owner, amount, decimals),
            spl.burn_checked(
                models.BurnCheckedParams(
                    program_id=pid,
                    mint=mint,
                    account=source,
                    owner=owner,
                    amount=amount,
                    decimals=decimals,
                )
            ),
        ),
        (
            spl_token.CloseAccount(pid, source, owner, owner),
            spl.close_account(
                models.CloseAccountParams(program_id=pid, account=source, dest=owner, owner=owner)
            ),
        ),
        (
            spl_token.FreezeAccount(pid, source, mint, owner),
            spl.freeze_account(
                models.FreezeAccountParams(
                    program_id=pid, account=source, mint=mint, authority=owner
                )
            ),
        ),
        (
            spl_token.SetAuthority(pid, mint, spl_token.AuthorityType.MINT_TOKENS, source, owner),
            spl.set_authority(
                models.SetAuthorityParams(
                    program_id=pid,
                    account=mint,
                    authority=models.AuthorityType.MINT_TOKENS,
                    current_authority=owner,
                    new_authority=source,
                )
            ),
        ),
    ]
    for ours, theirs in pairs:
        assert spl_token.encode(ours) == theirs


@given(keys, keys, u8)
def test_decodes_solana_py_initialize_mint(mint: Pubkey, authority: Pubkey, decimals: int) -> None:
    # solana-py always writes the 32-byte freeze key, even when the option tag is 0; the program
    # accepts that form, so must we.
    built = spl.initialize_mint(
        models.InitializeMintParams(
            decimals=decimals, program_id=TOKEN_PROGRAM, mint=mint, mint_authority=authority
        )
    )
    decoded = spl_token.decode(TOKEN_PROGRAM, [m.pubkey for m in built.accounts], built.data)
    assert decoded == spl_token.InitializeMint(TOKEN_PROGRAM, mint, decimals, authority, None)


def test_unmodelled_instruction_is_reported_not_dropped() -> None:
    a, b = Pubkey.new_unique(), Pubkey.new_unique()
    approve = spl.approve(
        models.ApproveParams(program_id=TOKEN_PROGRAM, source=a, delegate=b, owner=a, amount=5)
    )
    decoded = spl_token.decode(TOKEN_PROGRAM, [m.pubkey for m in approve.accounts], approve.data)
    assert isinstance(decoded, spl_token.OtherTokenInstruction)
    assert decoded.kind == spl_token.TokenInstructionType.APPROVE


def test_not_a_token_program() -> None:
    with pytest.raises(CodecError):
        spl_token.decode(Pubkey.new_unique(), [], b"\x09")


# --- layouts -----------------------------------------------------------------------------------

mints = st.builds(MintState, maybe_key, u64, u8, st.booleans(), maybe_key)
token_accounts = st.builds(
    TokenAccountState,
    keys,
    keys,
    u64,
    maybe_key,
    st.sampled_from(AccountState),
    st.none() | u64,
    u64,
    maybe_key,
)


@given(mints)
def test_mint_layout_round_trip_and_matches_solders(state: MintState) -> None:
    raw = spl_token.encode_mint(state)
    assert len(raw) == spl_token.MINT_SIZE
    assert spl_token.decode_mint(raw) == state
    if not state.is_initialized:
        return  # solders refuses uninitialised mints
    other = SoldersMint.from_bytes(raw)
    assert other.supply == state.supply
    assert other.decimals == state.decimals
    assert other.mint_authority == state.mint_authority
    assert other.freeze_authority == state.freeze_authority


@given(token_accounts)
def test_token_account_layout_round_trip_and_matches_solders(state: TokenAccountState) -> None:
    raw = spl_token.encode_token_account(state)
    assert len(raw) == spl_token.ACCOUNT_SIZE
    assert spl_token.decode_token_account(raw) == state
    if state.state == AccountState.UNINITIALIZED:
        return  # solders refuses uninitialised accounts
    other = SoldersTokenAccount.from_bytes(raw)
    assert (other.mint, other.owner, other.amount) == (state.mint, state.owner, state.amount)
    assert other.delegate == state.delegate
    assert int(other.state) == int(state.state)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    for fn in (spl_token.decode_mint, spl_token.decode_token_account):
        with contextlib.suppress(CodecError):
            fn(raw)


@given(mints, st.integers(1, 10))
def test_wrong_size_is_refused(state: MintState, extra: int) -> None:
    raw = spl_token.encode_mint(state)
    with pytest.raises(CodecError):
        spl_token.decode_mint(raw[:-extra])
    with pytest.raises(CodecError):
        spl_token.decode_mint(raw + bytes(extra))


def test_bad_option_tag_and_state_are_refused() -> None:
    raw = bytearray(spl_token.encode_mint(MintState(None, 1, 0, True, None)))
    raw[0] = 2
    with pytest.raises(CodecError, match="COption tag"):
        spl_token.decode_mint(bytes(raw))
    acct = TokenAccountState(
        Pubkey.new_unique(), Pubkey.new_unique(), 1, None, AccountState.INITIALIZED, None, 0, None
    )
    raw = bytearray(spl_token.encode_token_account(acct))
    raw[32 + 32 + 8 + 36] = 3
    with pytest.raises(CodecError, match="state"):
        spl_token.decode_token_account(bytes(raw))
