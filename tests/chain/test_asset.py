"""``decode_asset`` rules on constructed accounts: ownership, burning, strictness, JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from chain.asset import (
    Asset,
    AssetCollection,
    AssetCreator,
    RawAccount,
    decode_asset,
    metaplex_level,
    metaplex_name,
)
from chain.codecs import metaplex, spl_token, token2022
from chain.codecs.metaplex import Collection, Creator, Metadata, TokenStandard
from chain.codecs.spl_token import AccountState, MintState, TokenAccountState
from chain.programs import (
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_METADATA_PROGRAM,
    TOKEN_PROGRAM,
)
from core.errors import CodecError, NotFound

MINT = Pubkey.new_unique()
UA = Pubkey.new_unique()


def _mint(supply: int = 1) -> RawAccount:
    state = MintState(None, supply, 0, True, None)
    return RawAccount(MINT, TOKEN_PROGRAM, spl_token.encode_mint(state), 1)


def _token(
    owner: Pubkey,
    amount: int,
    *,
    mint: Pubkey = MINT,
    frozen: bool = False,
    delegate: Pubkey | None = None,
) -> RawAccount:
    state = TokenAccountState(
        mint,
        owner,
        amount,
        delegate,
        AccountState.FROZEN if frozen else AccountState.INITIALIZED,
        None,
        0,
        None,
    )
    return RawAccount(Pubkey.new_unique(), TOKEN_PROGRAM, spl_token.encode_token_account(state), 1)


def _metadata(name: str = "AIW3 Tech Chicken Lv1") -> RawAccount:
    meta = Metadata(
        4,
        UA,
        MINT,
        name,
        "AIW3",
        "https://x.test/1.json",
        0,
        (Creator(UA, True, 100),),
        False,
        True,
        255,
        TokenStandard.NON_FUNGIBLE,
        Collection(False, UA),
    )
    return RawAccount(
        metaplex.metadata_pda(MINT), TOKEN_METADATA_PROGRAM, metaplex.encode_metadata(meta), 1
    )


def test_owner_only_from_the_account_holding_the_token() -> None:
    old, new = Pubkey.new_unique(), Pubkey.new_unique()
    delegate = Pubkey.new_unique()
    holder = _token(new, 1, frozen=True, delegate=delegate)
    accounts = [_mint(), _metadata(), _token(old, 0), holder, _token(old, 1, mint=UA)]
    asset = decode_asset(MINT, accounts)
    assert asset.owner == str(new)
    assert asset.token_account == str(holder.address)
    assert (asset.frozen, asset.delegate, asset.amount) == (True, str(delegate), 1)
    assert asset.standard == "metaplex"
    assert asset.level == "1"
    assert asset.creators == (AssetCreator(str(UA), 100, True),)
    assert asset.collection == AssetCollection(str(UA), False)
    assert asset.token_standard == "NonFungible"
    # Only an emptied account: nobody owns it.
    nobody = decode_asset(MINT, [_mint(), _metadata(), _token(old, 0)])
    assert (nobody.owner, nobody.token_account, nobody.frozen) == (None, None, False)


def test_two_holders_mean_no_single_owner() -> None:
    accounts = [_mint(2), _metadata(), _token(UA, 1), _token(MINT, 1)]
    assert decode_asset(MINT, accounts).owner is None


def test_zero_supply_or_closed_mint_is_burnt() -> None:
    asset = decode_asset(MINT, [_mint(0), _metadata(), _token(UA, 1)])
    assert asset.burnt
    assert asset.owner is None
    gone = decode_asset(MINT, [_metadata()])
    assert gone.burnt
    assert gone.name == "AIW3 Tech Chicken Lv1"
    with pytest.raises(NotFound):
        decode_asset(MINT, [])
    # A zero-lamport, empty account is how RPC reports a closed one.
    closed = RawAccount(MINT, SYSTEM_PROGRAM, b"", 0)
    assert decode_asset(MINT, [closed], standard="token2022").burnt


def test_bad_accounts_are_codec_errors() -> None:
    with pytest.raises(CodecError):
        decode_asset(MINT, [RawAccount(MINT, SYSTEM_PROGRAM, b"\x00" * 82, 1)])
    with pytest.raises(CodecError):
        decode_asset(MINT, [RawAccount(MINT, TOKEN_PROGRAM, b"\x00" * 81, 1)])
    broken = _metadata()
    with pytest.raises(CodecError):
        decode_asset(MINT, [_mint(), RawAccount(broken.address, broken.owner, broken.data[:70])])


def test_metaplex_name_fits_and_round_trips_the_level() -> None:
    for title in ("AIW3 Tech Chicken", "AIW3 Quantum Alchemist", "AIW3 " + "é" * 40):
        for level in ("1", "5", "special"):
            name = metaplex_name(title, level)
            assert len(name.encode()) <= metaplex.MAX_NAME
            assert metaplex_level(name) == level
    assert metaplex_level("Mad Lads #9964") is None


assets = st.builds(
    Asset,
    mint=st.text(),
    standard=st.sampled_from(["token2022", "metaplex"]),
    token_program=st.text(),
    owner=st.none() | st.text(),
    token_account=st.none() | st.text(),
    amount=st.integers(0, 1),
    supply=st.integers(0, 2**64 - 1),
    decimals=st.integers(0, 9),
    level=st.none() | st.text(),
    name=st.text(),
    symbol=st.text(),
    uri=st.text(),
    creators=st.lists(st.builds(AssetCreator, st.text(), st.integers(0, 100), st.booleans())).map(
        tuple
    ),
    update_authority=st.none() | st.text(),
    collection=st.none() | st.builds(AssetCollection, st.text(), st.booleans()),
    token_standard=st.none() | st.text(),
    mutable=st.booleans(),
    burnt=st.booleans(),
    frozen=st.booleans(),
    delegate=st.none() | st.text(),
    mint_authority=st.none() | st.text(),
)


@given(assets)
def test_asset_json_round_trip(asset: Asset) -> None:
    assert Asset.from_dict(json.loads(asset.to_json())) == asset


def test_a_mint_address_holding_only_lamports_is_a_closed_mint() -> None:
    # A closed (Token-2022) mint's address can be sent lamports afterwards: RPC then returns a
    # system-owned account with no data. That is no mint, so the asset is burnt, not an error.
    refunded = RawAccount(MINT, SYSTEM_PROGRAM, b"", 890_880)
    asset = decode_asset(MINT, [refunded], standard="token2022")
    assert asset.burnt
    assert (asset.owner, asset.supply) == (None, 0)
    assert decode_asset(MINT, [refunded, _metadata()]).burnt
    with pytest.raises(NotFound):
        decode_asset(MINT, [refunded])


def test_a_token_2022_multisig_next_to_the_holder_is_ignored() -> None:
    owner = Pubkey.new_unique()
    mint_state = MintState(None, 1, 0, True, None)
    meta = token2022.TokenMetadata(UA, MINT, "n", "s", "u", (("level", "2"),))
    mint = RawAccount(
        MINT,
        TOKEN_2022_PROGRAM,
        token2022.encode_mint(token2022.Mint2022(mint_state, (meta,))),
        1,
    )
    state = TokenAccountState(MINT, owner, 1, None, AccountState.INITIALIZED, None, 0, None)
    holder = RawAccount(
        Pubkey.new_unique(),
        TOKEN_2022_PROGRAM,
        token2022.encode_account(token2022.Account2022(state, (token2022.ImmutableOwner(),))),
        1,
    )
    # A multisig (355 bytes) whose signer bytes happen to put 2 (Account) at offset 165 and
    # garbage where TLV entries would be.
    multisig = bytearray(range(256)) + bytearray(99)
    multisig[token2022.ACCOUNT_TYPE_OFFSET] = token2022.AccountType.ACCOUNT
    assert len(multisig) == spl_token.MULTISIG_SIZE
    other = RawAccount(Pubkey.new_unique(), TOKEN_2022_PROGRAM, bytes(multisig), 1)
    asset = decode_asset(MINT, [mint, holder, other])
    assert (asset.owner, asset.level, asset.burnt) == (str(owner), "2", False)
