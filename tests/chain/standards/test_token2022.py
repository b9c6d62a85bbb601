"""The ``token2022`` standard executed on LiteSVM (the real Token-2022, ATA and System
programs): collection, mint with membership, transfer, burn + close, atomic upgrade, and the
decoded ``Asset`` after each step."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from chain.asset import Asset, AssetCollection, AssetCreator, RawAccount
from chain.codecs import ata, decode_compiled, spl_token, token2022
from chain.programs import TOKEN_2022_PROGRAM
from chain.standards import (
    CollectionRequest,
    MintRequest,
    Plan,
    TransactionTooLarge,
    get_standard,
)
from chain.standards.base import MAX_TRANSACTION_SIZE, default_rent
from chain.standards.token2022 import Token2022Standard
from core.errors import ConfigError, InputError

STD = get_standard("token2022")
URI = "https://ipfs.test/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


class Chain:
    def __init__(self) -> None:
        self.svm = LiteSVM()
        self.system = Keypair()
        self.svm.airdrop(self.system.pubkey(), 10**12)

    def wallet(self) -> Keypair:
        kp = Keypair()
        self.svm.airdrop(kp.pubkey(), 10**10)
        return kp

    def send(self, plan: Plan, *keypairs: Keypair) -> TransactionMetadata:
        tx = plan.sign(list(keypairs), self.svm.latest_blockhash())
        return self.send_tx(tx)

    def send_tx(self, tx: Transaction) -> TransactionMetadata:
        result = self.svm.send_transaction(tx)
        assert not isinstance(result, FailedTransactionMetadata), result
        return result

    def accounts(self, addresses: Iterable[Pubkey]) -> list[RawAccount]:
        out = []
        for address in addresses:
            acc = self.svm.get_account(address)
            if acc is not None:
                out.append(RawAccount.from_solders(address, acc))
        return out

    def asset(self, mint: Pubkey, *wallets: Pubkey, collection: Pubkey | None = None) -> Asset:
        addresses = [mint, *(ata.address(w, mint, TOKEN_2022_PROGRAM) for w in wallets)]
        if collection is not None:
            addresses.append(collection)
        return STD.decode(mint, self.accounts(addresses))

    def collection(self) -> Pubkey:
        coll = Keypair()
        plan = STD.collection_plan(
            system=self.system.pubkey(),
            collection_mint=coll.pubkey(),
            request=CollectionRequest(name="AIW3 Equity NFT", uri=URI),
        )
        self.send(plan, self.system, coll)
        return coll.pubkey()

    def mint(self, owner: Pubkey, level: str = "1", collection: Pubkey | None = None) -> Pubkey:
        mint = Keypair()
        plan = STD.mint_plan(
            system=self.system.pubkey(),
            owner=owner,
            mint=mint.pubkey(),
            request=MintRequest(level, f"{URI}/{level}.json", "Tech Chicken"),
            collection=collection,
        )
        self.send(plan, self.system, mint)
        return mint.pubkey()


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_rent_formula_matches_the_runtime(chain: Chain) -> None:
    for size in (0, 82, 165, 234, 600):
        assert default_rent(size) == chain.svm.minimum_balance_for_rent_exemption(size)


def test_collection_mint_is_a_token_group(chain: Chain) -> None:
    coll = chain.collection()
    acc = chain.svm.get_account(coll)
    assert acc is not None
    decoded = token2022.decode_mint(bytes(acc.data))
    group = decoded.get(token2022.TokenGroup)
    assert group == token2022.TokenGroup(chain.system.pubkey(), coll, 0, 2**64 - 1)
    assert decoded.get(token2022.GroupPointer) == token2022.GroupPointer(
        chain.system.pubkey(), coll
    )
    assert decoded.base.supply == 0
    # The lamports we computed up front covered the grown account exactly.
    assert acc.lamports == chain.svm.minimum_balance_for_rent_exemption(len(acc.data))


def test_mint_with_collection_then_transfer_then_burn(chain: Chain) -> None:
    system = chain.system.pubkey()
    coll = chain.collection()
    alice, bob = chain.wallet(), chain.wallet()
    mint = chain.mint(alice.pubkey(), "1", coll)

    asset = chain.asset(mint, alice.pubkey(), collection=coll)
    assert asset == Asset(
        mint=str(mint),
        standard="token2022",
        token_program=str(TOKEN_2022_PROGRAM),
        owner=str(alice.pubkey()),
        token_account=str(ata.address(alice.pubkey(), mint, TOKEN_2022_PROGRAM)),
        amount=1,
        supply=1,
        decimals=0,
        level="1",
        name="AIW3 Equity NFT · Tech Chicken",
        symbol="AIW3",
        uri=f"{URI}/1.json",
        # The update authority proves nothing (it can be handed over unsigned): never verified.
        creators=(AssetCreator(str(system), 100, False),),
        update_authority=str(system),
        collection=AssetCollection(str(coll), True),
        token_standard=None,
        mutable=True,
        burnt=False,
        frozen=False,
        delegate=None,
        mint_authority=None,
        is_nft=True,
        metadata_pointer=str(mint),
        member_pointer=str(mint),
        extensions=("GroupMemberPointer", "MetadataPointer", "TokenMetadata", "TokenGroupMember"),
        account_extensions=("ImmutableOwner",),
    )
    assert Asset.from_dict(asset.to_dict()) == asset
    # Membership of the trusted collection is the proof; the system key alone is not.
    assert asset.is_created_by(collections=[str(coll)])
    assert asset.is_genuine(collections=[str(coll)])
    assert not asset.is_genuine(creators=[str(system)])
    group_acc = chain.svm.get_account(coll)
    assert group_acc is not None
    group = token2022.decode_mint(bytes(group_acc.data)).get(token2022.TokenGroup)
    assert group is not None
    assert group.size == 1
    mint_acc = chain.svm.get_account(mint)
    assert mint_acc is not None
    assert mint_acc.lamports == chain.svm.minimum_balance_for_rent_exemption(len(mint_acc.data))

    # Transfer to Bob (Alice pays, creates Bob's account).
    src = ata.address(alice.pubkey(), mint, TOKEN_2022_PROGRAM)
    dst = ata.address(bob.pubkey(), mint, TOKEN_2022_PROGRAM)
    transfer = Plan(
        (
            ata.create(alice.pubkey(), bob.pubkey(), mint, TOKEN_2022_PROGRAM),
            spl_token.encode(
                spl_token.TransferChecked(TOKEN_2022_PROGRAM, src, mint, dst, alice.pubkey(), 1, 0)
            ),
        ),
        alice.pubkey(),
        (alice.pubkey(),),
    )
    chain.send(transfer, alice)
    moved = chain.asset(mint, alice.pubkey(), bob.pubkey(), collection=coll)
    # Alice's emptied account is still there and still says she is its owner: our rule takes
    # the owner only from the account holding the token.
    assert chain.svm.get_account(src) is not None
    assert moved.owner == str(bob.pubkey())
    assert moved.token_account == str(dst)
    assert moved.amount == 1

    # Bob burns and closes: he alone signs and pays.
    before = chain.svm.get_balance(bob.pubkey())
    chain.send(STD.burn_plan(owner=bob.pubkey(), mint=mint), bob)
    assert chain.svm.get_account(dst) is None
    after = chain.svm.get_balance(bob.pubkey())
    assert before is not None
    assert after is not None
    assert after > before  # the account's rent came back, minus the fee
    burnt = chain.asset(mint, alice.pubkey(), bob.pubkey(), collection=coll)
    assert burnt.burnt
    assert burnt.supply == 0
    assert burnt.owner is None
    assert burnt.token_account is None
    assert burnt.level == "1"  # the metadata stays on the mint


def test_mint_without_collection(chain: Chain) -> None:
    owner = chain.wallet().pubkey()
    mint = chain.mint(owner, "special")
    asset = chain.asset(mint, owner)
    assert asset.collection is None
    assert asset.level == "special"
    assert asset.owner == str(owner)
    # Without a group there is no on-chain proof of who created it.
    assert asset.creators == (AssetCreator(str(chain.system.pubkey()), 100, False),)


def test_atomic_upgrade(chain: Chain) -> None:
    system = chain.system
    coll = chain.collection()
    user = chain.wallet()
    old = chain.mint(user.pubkey(), "1", coll)
    new = Keypair()
    plan = STD.upgrade_plan(
        system=system.pubkey(),
        owner=user.pubkey(),
        old_mint=old,
        new_mint=new.pubkey(),
        request=MintRequest("2", f"{URI}/2.json", "Quant Ape"),
        collection=coll,
    )
    assert plan.fee_payer == system.pubkey()
    assert set(plan.signers) == {system.pubkey(), user.pubkey(), new.pubkey()}
    assert plan.size() <= MAX_TRANSACTION_SIZE
    # The backend signs first and hands the partially signed transaction to the wallet.
    blockhash = chain.svm.latest_blockhash()
    tx = plan.sign([system, new], blockhash)
    assert not tx.is_signed()
    wire = bytes(tx)
    assert len(wire) == plan.size()
    from_wallet = Transaction.from_bytes(wire)
    from_wallet.partial_sign([user], blockhash)
    assert from_wallet.is_signed()
    result = chain.send_tx(from_wallet)

    assert chain.asset(old, user.pubkey(), collection=coll).burnt
    upgraded = chain.asset(new.pubkey(), user.pubkey(), collection=coll)
    assert (upgraded.owner, upgraded.level, upgraded.burnt) == (str(user.pubkey()), "2", False)
    assert upgraded.name == "AIW3 Equity NFT · Quant Ape"
    assert upgraded.collection == AssetCollection(str(coll), True)

    # Every instruction of the upgrade decodes; only the System create_account is foreign.
    msg = from_wallet.message
    keys = list(msg.account_keys)
    decoded = [
        decode_compiled(keys, ci.program_id_index, ci.accounts, ci.data) for ci in msg.instructions
    ]
    assert sum(d is None for d in decoded) == 1
    assert isinstance(decoded[0], spl_token.BurnChecked)
    assert isinstance(decoded[1], spl_token.CloseAccount)
    assert isinstance(decoded[-1], spl_token.SetAuthority)
    assert result.compute_units_consumed() > 0


def test_upgrade_is_all_or_nothing(chain: Chain) -> None:
    """If the burn fails (the signer does not hold the old NFT), the new NFT is not minted."""
    system = chain.system
    holder, stranger = chain.wallet(), chain.wallet()
    old = chain.mint(holder.pubkey(), "1")
    new = Keypair()
    # The stranger has no token account for the old mint.
    plan = STD.upgrade_plan(
        system=system.pubkey(),
        owner=stranger.pubkey(),
        old_mint=old,
        new_mint=new.pubkey(),
        request=MintRequest("2", f"{URI}/2.json"),
    )
    tx = plan.sign([system, new, stranger], chain.svm.latest_blockhash())
    result = chain.svm.send_transaction(tx)
    assert isinstance(result, FailedTransactionMetadata)
    assert chain.svm.get_account(new.pubkey()) is None
    assert chain.asset(old, holder.pubkey()).owner == str(holder.pubkey())


def test_minting_twice_at_one_address_fails(chain: Chain) -> None:
    owner = chain.wallet().pubkey()
    mint = Keypair()
    req = MintRequest("1", f"{URI}/1.json")
    plan = STD.mint_plan(system=chain.system.pubkey(), owner=owner, mint=mint.pubkey(), request=req)
    chain.send(plan, chain.system, mint)
    chain.svm.expire_blockhash()
    again = plan.sign([chain.system, mint], chain.svm.latest_blockhash())
    assert isinstance(chain.svm.send_transaction(again), FailedTransactionMetadata)
    assert chain.asset(mint.pubkey(), owner).supply == 1


def test_plan_refuses_unneeded_keys_and_oversized_transactions() -> None:
    system, owner, mint = Keypair(), Keypair(), Keypair()
    plan = STD.mint_plan(
        system=system.pubkey(),
        owner=owner.pubkey(),
        mint=mint.pubkey(),
        request=MintRequest("1", URI),
    )
    with pytest.raises(InputError):
        plan.sign([system, owner], Hash.default())
    with pytest.raises(InputError, match="1232"):
        STD.upgrade_plan(
            system=system.pubkey(),
            owner=owner.pubkey(),
            old_mint=Pubkey.new_unique(),
            new_mint=mint.pubkey(),
            request=MintRequest("2", "u" * 600),
        )


def test_get_standard() -> None:
    assert isinstance(get_standard(" Token2022 "), Token2022Standard)
    assert get_standard("metaplex").name == "metaplex"
    with pytest.raises(
        ConfigError, match="unknown asset standard 'erc721': use one of metaplex, token2022"
    ):
        get_standard("erc721")


def test_mint_whose_final_size_would_be_a_multisig_length_executes(chain: Chain) -> None:
    # Token-2022 never lets an extended account be exactly 355 bytes (a multisig's size): the
    # metadata realloc makes it 357, so the rent paid up front must cover 357. Title, symbol,
    # uri and level are chosen so that the naive sum is exactly 355.
    owner = chain.wallet().pubkey()
    mint = Keypair()
    request = MintRequest("", "abcd", "x", "")
    meta = token2022.TokenMetadata(
        chain.system.pubkey(), mint.pubkey(), "AIW3 Equity NFT · x", "", "abcd", (("level", ""),)
    )
    pointer = token2022.MetadataPointer(chain.system.pubkey(), mint.pubkey())
    naive = token2022.TLV_START + token2022.tlv_size(pointer) + token2022.tlv_size(meta)
    assert naive == spl_token.MULTISIG_SIZE
    plan = STD.mint_plan(
        system=chain.system.pubkey(), owner=owner, mint=mint.pubkey(), request=request
    )
    chain.send(plan, chain.system, mint)
    acc = chain.svm.get_account(mint.pubkey())
    assert acc is not None
    assert len(acc.data) == spl_token.MULTISIG_SIZE + 2
    assert chain.asset(mint.pubkey(), owner).owner == str(owner)


def test_an_oversized_mint_or_collection_is_refused_when_planned() -> None:
    # A mint transaction over 1,232 bytes can never land; say so before anything is signed,
    # stored or sent (the upgrade already did, a plain mint and the collection did not).
    system, owner, mint = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    with pytest.raises(TransactionTooLarge, match="1232"):
        STD.mint_plan(system=system, owner=owner, mint=mint, request=MintRequest("1", "u" * 900))
    with pytest.raises(TransactionTooLarge, match="1232"):
        STD.collection_plan(
            system=system, collection_mint=mint, request=CollectionRequest("c", "u" * 1100)
        )
    fits = STD.mint_plan(system=system, owner=owner, mint=mint, request=MintRequest("1", URI))
    assert fits.size() <= MAX_TRANSACTION_SIZE


def test_upgrade_burns_from_the_account_that_holds_the_nft(chain: Chain) -> None:
    # A wallet may keep the NFT in a token account that is not its ATA (moved there with a
    # plain transfer). The burn must name that account, as the decoded Asset reports it; the
    # ATA would be empty or absent and the program would refuse the burn.
    system, user = chain.system, chain.wallet()
    old = chain.mint(user.pubkey(), "1")
    side = Keypair()
    setup = Plan(
        (
            create_account(
                CreateAccountParams(
                    from_pubkey=user.pubkey(),
                    to_pubkey=side.pubkey(),
                    lamports=chain.svm.minimum_balance_for_rent_exemption(spl_token.ACCOUNT_SIZE),
                    space=spl_token.ACCOUNT_SIZE,
                    owner=TOKEN_2022_PROGRAM,
                )
            ),
            # InitializeAccount3 (18): account, mint; data = owner.
            Instruction(
                TOKEN_2022_PROGRAM,
                bytes([18]) + bytes(user.pubkey()),
                [AccountMeta(side.pubkey(), False, True), AccountMeta(old, False, False)],
            ),
            spl_token.encode(
                spl_token.TransferChecked(
                    TOKEN_2022_PROGRAM,
                    ata.address(user.pubkey(), old, TOKEN_2022_PROGRAM),
                    old,
                    side.pubkey(),
                    user.pubkey(),
                    1,
                    0,
                )
            ),
        ),
        user.pubkey(),
        (user.pubkey(), side.pubkey()),
    )
    chain.send(setup, user, side)
    held = STD.decode(old, chain.accounts([old, side.pubkey()]))
    assert held.token_account == str(side.pubkey())
    new = Keypair()
    plan = STD.upgrade_plan(
        system=system.pubkey(),
        owner=user.pubkey(),
        old_mint=old,
        new_mint=new.pubkey(),
        request=MintRequest("2", f"{URI}/2.json"),
        old_token_account=side.pubkey(),
    )
    chain.send(plan, system, new, user)
    assert STD.decode(old, chain.accounts([old, side.pubkey()])).burnt
    assert chain.svm.get_account(side.pubkey()) is None  # closed, rent back to the owner
    assert chain.asset(new.pubkey(), user.pubkey()).owner == str(user.pubkey())
