"""The ``metaplex`` standard. The Token Metadata program cannot run here, so: the SPL Token part
of the mint executes on LiteSVM, every instruction decodes back to what the standard promises,
and the accounts the program would write decode to the expected ``Asset``."""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from chain.asset import AssetCreator, RawAccount, decode_asset
from chain.codecs import ata, decode_compiled, metaplex, spl_token
from chain.codecs.metaplex import Metadata, TokenStandard
from chain.programs import TOKEN_METADATA_PROGRAM, TOKEN_PROGRAM
from chain.standards import CollectionRequest, MintRequest, Plan, get_standard
from chain.standards.base import MAX_TRANSACTION_SIZE

STD = get_standard("metaplex")
URI = "https://ipfs.test/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/1.json"


def _decoded(plan: Plan) -> list[object]:
    msg = plan.message(Hash.default())
    keys = list(msg.account_keys)
    n = msg.header.num_required_signatures
    return [
        decode_compiled(keys, ci.program_id_index, ci.accounts, ci.data, n)
        for ci in msg.instructions
    ]


@pytest.fixture
def keys() -> tuple[Pubkey, Pubkey, Pubkey, Pubkey]:
    return tuple(Keypair().pubkey() for _ in range(4))  # type: ignore[return-value]


def test_mint_plan_instructions(keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey]) -> None:
    system, owner, mint, coll = keys
    plan = STD.mint_plan(
        system=system,
        owner=owner,
        mint=mint,
        request=MintRequest("3", URI, "On-chain Hunter"),
        collection=coll,
    )
    assert plan.fee_payer == system
    assert set(plan.signers) == {system, mint}
    assert plan.size() <= MAX_TRANSACTION_SIZE
    create, init, make_ata, mint_to, meta, edition, verify = _decoded(plan)
    assert create is None  # System program
    assert init == spl_token.InitializeMint2(TOKEN_PROGRAM, mint, 0, system, system)
    assert isinstance(make_ata, ata.CreateAssociatedTokenAccount)
    assert (make_ata.owner, make_ata.payer, make_ata.idempotent) == (owner, system, True)
    assert mint_to == spl_token.MintToChecked(
        TOKEN_PROGRAM, mint, ata.address(owner, mint), system, 1, 0
    )
    assert isinstance(meta, metaplex.CreateMetadataAccountV3)
    assert meta.metadata == metaplex.metadata_pda(mint)
    assert meta.update_authority == system
    assert meta.update_authority_is_signer  # so the creator below is verified at creation
    assert meta.data.creators == (metaplex.Creator(system, True, 100),)
    assert meta.data.collection == metaplex.Collection(False, coll)
    assert meta.data.name == "AIW3 On-chain Hunter Lv3"
    assert meta.data.uri == URI
    assert isinstance(edition, metaplex.CreateMasterEditionV3)
    assert edition.edition == metaplex.master_edition_pda(mint)
    assert edition.max_supply == 0
    assert edition.mint_authority == system
    assert isinstance(verify, metaplex.VerifySizedCollectionItem)
    assert verify.collection_metadata == metaplex.metadata_pda(coll)
    assert verify.collection_master_edition == metaplex.master_edition_pda(coll)


def test_spl_part_executes_and_program_state_decodes(
    keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey],
) -> None:
    svm = LiteSVM()
    system, mint_kp, owner = Keypair(), Keypair(), Keypair().pubkey()
    svm.airdrop(system.pubkey(), 10**10)
    plan = STD.mint_plan(
        system=system.pubkey(),
        owner=owner,
        mint=mint_kp.pubkey(),
        request=MintRequest("1", URI, "Tech Chicken"),
    )
    spl_only = Plan(plan.instructions[:4], plan.fee_payer, plan.signers)
    result = svm.send_transaction(spl_only.sign([system, mint_kp], svm.latest_blockhash()))
    assert not isinstance(result, FailedTransactionMetadata), result
    mint = mint_kp.pubkey()
    accounts = [
        RawAccount.from_solders(k, a)
        for k in (mint, ata.address(owner, mint))
        if (a := svm.get_account(k)) is not None
    ]
    # What CreateMetadataAccountV3 + CreateMasterEditionV3 then write: the metadata account
    # (strings NUL-padded) and the edition taking over both mint authorities.
    meta_ix = next(d for d in _decoded(plan) if isinstance(d, metaplex.CreateMetadataAccountV3))
    written = Metadata(
        4,
        system.pubkey(),
        mint,
        meta_ix.data.name,
        meta_ix.data.symbol,
        meta_ix.data.uri,
        0,
        meta_ix.data.creators,
        False,
        True,
        255,
        TokenStandard.NON_FUNGIBLE,
    )
    edition = metaplex.master_edition_pda(mint)
    mint_acc = next(a for a in accounts if a.address == mint)
    taken = spl_token.decode_mint(mint_acc.data)
    assert (taken.supply, taken.mint_authority, taken.freeze_authority) == (
        1,
        system.pubkey(),
        system.pubkey(),
    )
    after = spl_token.MintState(edition, 1, 0, True, edition)
    accounts = [
        RawAccount(mint, TOKEN_PROGRAM, spl_token.encode_mint(after), mint_acc.lamports),
        *(a for a in accounts if a.address != mint),
        RawAccount(
            metaplex.metadata_pda(mint), TOKEN_METADATA_PROGRAM, metaplex.encode_metadata(written)
        ),
    ]
    asset = STD.decode(mint, accounts)
    assert asset.standard == "metaplex"
    assert asset.owner == str(owner)
    assert asset.level == "1"
    assert asset.name == "AIW3 Tech Chicken Lv1"
    assert asset.creators == (AssetCreator(str(system.pubkey()), 100, True),)
    assert asset.update_authority == str(system.pubkey())
    assert asset.mint_authority == str(edition)
    assert asset.token_standard == "NonFungible"
    assert asset.collection is None
    assert asset == decode_asset(str(mint), reversed(accounts))


def test_burn_plan_is_signed_by_the_owner(keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey]) -> None:
    _, owner, mint, coll = keys
    plan = STD.burn_plan(owner=owner, mint=mint, collection=coll)
    assert (plan.fee_payer, plan.signers) == (owner, (owner,))
    (burn,) = _decoded(plan)
    assert burn == metaplex.BurnNft(
        metaplex.metadata_pda(mint),
        owner,
        mint,
        ata.address(owner, mint),
        metaplex.master_edition_pda(mint),
        metaplex.metadata_pda(coll),
    )


def test_upgrade_fits_one_transaction(keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey]) -> None:
    system, owner, old, coll = keys
    new = Keypair().pubkey()
    plan = STD.upgrade_plan(
        system=system,
        owner=owner,
        old_mint=old,
        new_mint=new,
        request=MintRequest("5", URI, "Quantum Alchemist"),
        collection=coll,
        old_collection=coll,
    )
    assert plan.fee_payer == system
    assert set(plan.signers) == {system, owner, new}
    assert plan.size() <= MAX_TRANSACTION_SIZE
    decoded = _decoded(plan)
    assert isinstance(decoded[0], metaplex.BurnNft)
    assert decoded[0].owner == owner
    assert isinstance(decoded[-1], metaplex.VerifySizedCollectionItem)


def test_collection_plan(keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey]) -> None:
    system, _, coll, _ = keys
    plan = STD.collection_plan(
        system=system,
        collection_mint=coll,
        request=CollectionRequest(name="AIW3 Equity NFT", uri=URI),
    )
    meta = next(d for d in _decoded(plan) if isinstance(d, metaplex.CreateMetadataAccountV3))
    assert meta.collection_details == metaplex.CollectionDetails(0, 0)
    assert meta.data.collection is None


def test_related_addresses(keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey]) -> None:
    mint = keys[0]
    assert STD.related_addresses(mint) == (
        mint,
        metaplex.metadata_pda(mint),
        metaplex.master_edition_pda(mint),
    )


def test_burn_names_the_account_holding_the_nft(
    keys: tuple[Pubkey, Pubkey, Pubkey, Pubkey],
) -> None:
    system, owner, old, _ = keys
    side = Pubkey.new_unique()
    plan = STD.upgrade_plan(
        system=system,
        owner=owner,
        old_mint=old,
        new_mint=Keypair().pubkey(),
        request=MintRequest("2", URI),
        old_token_account=side,
    )
    burn = _decoded(plan)[0]
    assert isinstance(burn, metaplex.BurnNft)
    assert (burn.token_account, burn.owner, burn.mint) == (side, owner, old)
