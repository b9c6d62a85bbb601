"""``decode_asset`` rules on constructed accounts: ownership, burning, strictness, JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

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
    is_nft=st.booleans(),
    freeze_authority=st.none() | st.text(),
    permanent_delegate=st.none() | st.text(),
    close_authority=st.none() | st.text(),
    transfer_hook=st.none() | st.text(),
    non_transferable=st.booleans(),
    default_state=st.none() | st.sampled_from(["initialized", "frozen"]),
    metadata_pointer=st.none() | st.text(),
    member_pointer=st.none() | st.text(),
    extensions=st.lists(st.text(), max_size=4).map(tuple),
    account_extensions=st.lists(st.text(), max_size=2).map(tuple),
    edition=st.none() | st.sampled_from(["master", "print"]),
    edition_max_supply=st.none() | st.integers(0, 2**64 - 1),
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


# --- genuineness: Metaplex, modelled with real-shaped accounts --------------------------------

EDITION = metaplex.master_edition_pda(MINT)
COLLECTION = Pubkey.new_unique()


def _mpl_mint(
    supply: int = 1, authority: Pubkey | None = EDITION, freeze: Pubkey | None = EDITION
) -> RawAccount:
    # As on mainnet: the master edition holds both the mint and the freeze authority.
    state = MintState(authority, supply, 0, True, freeze)
    return RawAccount(MINT, TOKEN_PROGRAM, spl_token.encode_mint(state), 1)


ORIGINAL = metaplex.MasterEdition(6, 0, 0)  # max supply Some(0): no print, ever


def _edition(
    edition: metaplex.MasterEdition | metaplex.Edition = ORIGINAL,
    owner: Pubkey = TOKEN_METADATA_PROGRAM,
) -> RawAccount:
    data = (
        metaplex.encode_master_edition(edition)
        if isinstance(edition, metaplex.MasterEdition)
        else metaplex.encode_edition(edition)
    )
    return RawAccount(EDITION, owner, data, 1)


def _mpl_metadata(**changes: Any) -> RawAccount:
    meta = Metadata(
        4,
        UA,
        MINT,
        "AIW3 Quantum Alchemist Lv5",
        "AIW3",
        "https://x.test/5.json",
        0,
        (Creator(UA, True, 100),),
        False,
        True,
        255,
        TokenStandard.NON_FUNGIBLE,
        Collection(True, COLLECTION),
    )
    meta = dataclasses.replace(meta, **changes)
    return RawAccount(
        metaplex.metadata_pda(MINT), TOKEN_METADATA_PROGRAM, metaplex.encode_metadata(meta), 1
    )


def _mpl(*accounts: RawAccount, holder: bool = True) -> Asset:
    extra = [_token(Pubkey.new_unique(), 1)] if holder else []
    return decode_asset(MINT, [*accounts, *extra])


def _codes(asset: Asset, creators: tuple[str, ...] = (str(UA),)) -> set[str]:
    return set(asset.verdict(creators=creators).codes)


def test_metaplex_original_with_a_trusted_verified_creator_is_genuine() -> None:
    asset = _mpl(_mpl_mint(), _mpl_metadata(), _edition())
    assert (asset.is_nft, asset.edition, asset.edition_max_supply) == (True, "master", 0)
    assert asset.owner is not None
    verdict = asset.verdict(creators=[str(UA)])
    assert (verdict.genuine, verdict.reasons) == (True, ())
    assert verdict.proof is not None
    assert str(UA) in verdict.proof
    assert asset.is_created_by([str(UA)])
    # Another creator set, or none: not genuine.
    assert _codes(asset, (str(Pubkey.new_unique()),)) == {"creator"}
    assert _codes(asset, ()) == {"creator"}


def test_a_verified_metaplex_collection_proves_nothing() -> None:
    # Only the creator flag counts: a verified collection we trust does not stand in for it.
    asset = _mpl(_mpl_mint(), _mpl_metadata(creators=(Creator(UA, False, 100),)), _edition())
    assert asset.collection == AssetCollection(str(COLLECTION), True)
    verdict = asset.verdict(collections=[str(COLLECTION)], creators=[str(UA)])
    assert verdict.codes == ("creator",)
    assert not asset.is_created_by([str(UA)], collections=[str(COLLECTION)])


def test_metaplex_edition_must_be_an_original_that_can_print_nothing() -> None:
    missing = _mpl(_mpl_mint(), _mpl_metadata())
    # The edition PDA holds the mint authority: an NFT with an owner, but no edition read.
    assert (missing.is_nft, missing.owner is not None, missing.edition) == (True, True, None)
    assert _codes(missing) == {"edition"}
    for edition in (
        metaplex.MasterEdition(6, 0, None),  # unlimited prints
        metaplex.MasterEdition(6, 3, 5),
        metaplex.Edition(1, Pubkey.new_unique(), 7),  # a print, not the original
    ):
        assert _codes(_mpl(_mpl_mint(), _mpl_metadata(), _edition(edition))) == {"edition"}
    # Bytes at the edition PDA that the metadata program does not own are nobody's edition.
    forged = _mpl(_mpl_mint(), _mpl_metadata(), _edition(owner=SYSTEM_PROGRAM))
    assert forged.edition is None
    assert _codes(forged) == {"edition"}
    print_edition = _mpl(
        _mpl_mint(),
        _mpl_metadata(token_standard=TokenStandard.NON_FUNGIBLE_EDITION),
        _edition(metaplex.Edition(1, Pubkey.new_unique(), 1)),
    )
    assert _codes(print_edition) == {"edition", "token_standard"}


def test_a_fungible_with_a_live_mint_authority_is_no_nft() -> None:
    minter = Pubkey.new_unique()
    asset = _mpl(
        _mpl_mint(supply=5, authority=minter, freeze=None),
        _mpl_metadata(token_standard=TokenStandard.FUNGIBLE),
    )
    assert (asset.is_nft, asset.owner, asset.supply) == (False, None, 5)
    assert _codes(asset) == {"supply", "mint_authority", "edition", "token_standard"}


def test_metaplex_authorities_other_than_the_edition_are_refused() -> None:
    other = Pubkey.new_unique()
    assert _codes(_mpl(_mpl_mint(freeze=other), _mpl_metadata(), _edition())) == {
        "freeze_authority"
    }
    # No freeze authority at all is fine: nobody can freeze.
    assert _codes(_mpl(_mpl_mint(freeze=None), _mpl_metadata(), _edition())) == set()
    live = _mpl(_mpl_mint(authority=other), _mpl_metadata(), _edition())
    assert (live.is_nft, live.owner) == (False, None)
    assert _codes(live) == {"mint_authority"}


def test_a_burnt_metaplex_nft_is_not_created_by_anyone() -> None:
    asset = _mpl(_mpl_mint(supply=0), _mpl_metadata(), _edition(), holder=False)
    assert asset.burnt
    assert not asset.is_created_by([str(UA)])
    assert _codes(asset) == {"burnt"}


def test_metaplex_metadata_naming_another_mint_is_refused() -> None:
    with pytest.raises(CodecError, match="names another mint"):
        _mpl(_mpl_mint(), _mpl_metadata(mint=Pubkey.new_unique()), _edition())


# --- genuineness: Token-2022 edge cases on constructed accounts -------------------------------


def _t22(
    *extra: token2022.Extension, holder_extensions: tuple[token2022.Extension, ...] = ()
) -> Asset:
    meta = token2022.TokenMetadata(UA, MINT, "n", "s", "u", (("level", "1"),))
    exts = (
        token2022.GroupMemberPointer(UA, MINT),
        token2022.MetadataPointer(UA, MINT),
        meta,
        token2022.TokenGroupMember(MINT, COLLECTION, 1),
        *extra,
    )
    mint = RawAccount(
        MINT,
        TOKEN_2022_PROGRAM,
        token2022.encode_mint(token2022.Mint2022(MintState(None, 1, 0, True, None), exts)),
        1,
    )
    state = TokenAccountState(MINT, UA, 1, None, AccountState.INITIALIZED, None, 0, None)
    account = token2022.Account2022(state, (token2022.ImmutableOwner(), *holder_extensions))
    holder = RawAccount(
        Pubkey.new_unique(), TOKEN_2022_PROGRAM, token2022.encode_account(account), 1
    )
    return decode_asset(MINT, [mint, holder])


def test_token2022_fails_closed_on_any_other_extension() -> None:
    trusted = [str(COLLECTION)]
    assert _t22().verdict(collections=trusted).genuine
    fee = _t22(token2022.UnknownExtension(1, bytes(108)))
    assert "TransferFeeConfig" in fee.extensions
    assert fee.verdict(collections=trusted).codes == ("extension",)
    unknown = _t22(token2022.UnknownExtension(99, b"x"))
    assert unknown.extensions[-1] == "Unknown(99)"
    assert unknown.verdict(collections=trusted).codes == ("unknown_extension",)
    memo = _t22(holder_extensions=(token2022.UnknownExtension(8, b"\x01"),))
    assert memo.account_extensions == ("ImmutableOwner", "MemoTransfer")
    assert memo.verdict(collections=trusted).codes == ("account_extension",)


def test_token2022_update_authority_is_never_a_verified_creator() -> None:
    asset = _t22()
    assert asset.creators == (AssetCreator(str(UA), 100, False),)
    assert not asset.is_genuine(creators=[str(UA)])
    assert not asset.is_created_by([str(UA)])
    assert asset.is_created_by(collections=[str(COLLECTION)])
