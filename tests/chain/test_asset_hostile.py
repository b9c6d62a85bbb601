"""Hostile Token-2022 mints built on the real local chain, each read back by ``fetch_asset`` and
judged by ``Asset.verdict``: a counterfeit whose authorities were handed to our key unsigned,
every mint control that lets someone else move, freeze, close or re-point a token, and the
supply shapes that are no NFT. ``tests/aiw3/test_cli_asset.py`` runs the same cases through
``aiw3 asset show``.

Each control case is built by its own key in its own collection, and that collection is
trusted when judging it, so the control alone is what refuses it.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction

from chain.asset import Asset, fetch_asset
from chain.codecs import ata, spl_token, token2022
from chain.codecs.spl_token import AccountState, AuthorityType
from chain.localnet import Localnet, LocalnetConfig
from chain.programs import TOKEN_2022_PROGRAM
from chain.rpc import RpcClient, RpcEndpoint, Slotted
from chain.standards import CollectionRequest, MintRequest, get_standard

STD = get_standard("token2022")
T22 = TOKEN_2022_PROGRAM


class LocalChain:
    """The local chain over HTTP JSON-RPC, driven synchronously from the test thread."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply = httpx.post(self.url, json=body, timeout=10).json()
        assert "error" not in reply, reply
        return reply["result"]

    def wait(self, signature: str) -> None:
        # Bounded polling, not a timing assertion: the 20 ms slot clock confirms within a few.
        for _ in range(500):
            status = self.call("getSignatureStatuses", [[signature]])["value"][0]
            if status and status["confirmationStatus"] in ("confirmed", "finalized"):
                assert status["err"] is None, status
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"{signature} never confirmed")

    def send(self, ixs: list[Instruction] | tuple[Instruction, ...], *signers: Keypair) -> None:
        blockhash = Hash.from_string(self.call("getLatestBlockhash", [])["value"]["blockhash"])
        tx = Transaction(list(signers), Message(list(ixs), signers[0].pubkey()), blockhash)
        sig = self.call(
            "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}]
        )
        self.wait(sig)

    def wallet(self) -> Keypair:
        key = Keypair()
        self.wait(self.call("requestAirdrop", [str(key.pubkey()), 10**10]))
        return key

    def rent(self, size: int) -> int:
        return int(self.call("getMinimumBalanceForRentExemption", [size]))

    def collection(self, authority: Keypair) -> Pubkey:
        coll = Keypair()
        plan = STD.collection_plan(
            system=authority.pubkey(),
            collection_mint=coll.pubkey(),
            request=CollectionRequest(name="AIW3 Equity NFT", uri="https://x.test/c.json"),
        )
        self.send(plan.instructions, authority, coll)
        return coll.pubkey()

    def nft(
        self, authority: Keypair, owner: Pubkey, collection: Pubkey, level: str = "5"
    ) -> Pubkey:
        """An NFT exactly as the production standard mints it."""
        mint = Keypair()
        plan = STD.mint_plan(
            system=authority.pubkey(),
            owner=owner,
            mint=mint.pubkey(),
            request=MintRequest(level, f"https://x.test/{level}.json", "Quantum Alchemist"),
            collection=collection,
        )
        self.send(plan.instructions, authority, mint)
        return mint.pubkey()

    def fetch(self, mint: Pubkey) -> Slotted[Asset]:
        """The library call, in a thread of its own as the CLI runs it."""

        async def read() -> Slotted[Asset]:
            endpoint = RpcEndpoint(url=self.url, name="test")
            async with RpcClient([endpoint], metrics=CollectorRegistry()) as client:
                return await fetch_asset(client, mint)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, read()).result()


@pytest.fixture(scope="session")
def chain() -> Iterator[LocalChain]:
    """The local chain served from its own event loop in a thread, so that the code under test
    can run ``asyncio.run`` as it does from a shell."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    net = Localnet(LocalnetConfig(slot_ms=20, finality_depth=6), rpc_port=0, ws_port=0)
    asyncio.run_coroutine_threadsafe(net.start(), loop).result(timeout=30)
    try:
        yield LocalChain(net.rpc_url)
    finally:
        asyncio.run_coroutine_threadsafe(net.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# --- a Token-2022 NFT with one thing changed -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """What differs from an AIW3 NFT: extra mint extensions (initialised before the mint),
    a kept freeze or mint authority, the decimals and the amounts minted to whom."""

    extra: tuple[token2022.Extension, ...] = ()
    freeze_authority: bool = False
    keep_mint_authority: bool = False
    decimals: int = 0
    amounts: tuple[int, ...] = (1,)


def _extra_init(mint: Pubkey, ext: token2022.Extension) -> Instruction:
    match ext:
        case token2022.PermanentDelegate(delegate=delegate):
            assert delegate is not None
            return token2022.encode(token2022.InitializePermanentDelegate(mint, delegate))
        case token2022.MintCloseAuthority(close_authority=close):
            return token2022.encode(token2022.InitializeMintCloseAuthority(mint, close))
        case token2022.TransferHook(authority=authority, program_id=program):
            return token2022.encode(token2022.InitializeTransferHook(mint, authority, program))
        case token2022.NonTransferable():
            return token2022.encode(token2022.InitializeNonTransferableMint(mint))
        case token2022.DefaultAccountState(state=state):
            return token2022.encode(token2022.InitializeDefaultAccountState(mint, state))
    raise AssertionError(f"no initialiser for {ext}")


def build_variant(
    chain: LocalChain, maker: Keypair, collection: Pubkey, owners: list[Pubkey], v: Variant
) -> Pubkey:
    """The production recipe (pointers to self, in-mint metadata with a level, membership of
    ``collection``) plus the variant, in one transaction signed by ``maker``."""
    mint_kp = Keypair()
    mint, me = mint_kp.pubkey(), maker.pubkey()
    meta = token2022.TokenMetadata(
        me, mint, "AIW3 Equity NFT · Level 9", "AIW3", "https://x.test/9.json", (("level", "9"),)
    )
    fixed = [
        token2022.GroupMemberPointer(me, mint),
        token2022.MetadataPointer(me, mint),
        *v.extra,
    ]
    grown = [meta, token2022.TokenGroupMember(mint, collection, 0)]
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=me,
                to_pubkey=mint,
                lamports=chain.rent(token2022.mint_size([*fixed, *grown])),
                space=token2022.mint_size(fixed),
                owner=T22,
            )
        ),
        *(_extra_init(mint, ext) for ext in v.extra),
        token2022.encode(token2022.InitializeGroupMemberPointer(mint, me, mint)),
        token2022.encode(token2022.InitializeMetadataPointer(mint, me, mint)),
        spl_token.encode(
            spl_token.InitializeMint2(T22, mint, v.decimals, me, me if v.freeze_authority else None)
        ),
        token2022.encode(
            token2022.MetadataInitialize(mint, me, mint, me, meta.name, meta.symbol, meta.uri)
        ),
        token2022.encode(token2022.MetadataUpdateField(mint, me, "level", "9")),
        token2022.encode(token2022.GroupInitializeMember(mint, mint, me, collection, me)),
    ]
    starts_frozen = any(
        isinstance(e, token2022.DefaultAccountState) and e.state == AccountState.FROZEN
        for e in v.extra
    )
    for owner, amount in zip(owners, v.amounts, strict=True):
        account = ata.address(owner, mint, T22)
        ixs.append(ata.create(me, owner, mint, T22))
        if starts_frozen:
            # The account starts frozen: the freeze authority thaws it to mint, then freezes it.
            ixs.append(spl_token.encode(spl_token.ThawAccount(T22, account, mint, me)))
        ixs.append(
            spl_token.encode(spl_token.MintToChecked(T22, mint, account, me, amount, v.decimals))
        )
        if starts_frozen:
            ixs.append(spl_token.encode(spl_token.FreezeAccount(T22, account, mint, me)))
    if not v.keep_mint_authority:
        ixs.append(
            spl_token.encode(spl_token.SetAuthority(T22, mint, AuthorityType.MINT_TOKENS, None, me))
        )
    chain.send(ixs, maker, mint_kp)
    return mint


# --- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A mint to show, the collections to trust when judging it, the reason codes expected
    (exactly), and a check of the facts ``Asset`` must report."""

    mint: Pubkey
    collections: tuple[str, ...]
    codes: frozenset[str]
    check: Callable[[Asset], None]


@dataclass(frozen=True, slots=True)
class World:
    """Our system key and the collection it created and kept, plus an NFT it minted there."""

    system: Keypair
    collection: Pubkey
    genuine: Pubkey
    owner: Pubkey


def make_world(chain: LocalChain) -> World:
    system = chain.wallet()
    collection = chain.collection(system)
    owner = Keypair().pubkey()
    return World(system, collection, chain.nft(system, owner, collection), owner)


def _no_check(_: Asset) -> None:
    pass


def case_genuine(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        assert (asset.owner, asset.is_nft, asset.level) == (str(world.owner), True, "5")
        assert asset.extensions == (
            "GroupMemberPointer",
            "MetadataPointer",
            "TokenMetadata",
            "TokenGroupMember",
        )
        assert asset.account_extensions == ("ImmutableOwner",)

    return Case(world.genuine, (str(world.collection),), frozenset(), check)


def case_counterfeit(chain: LocalChain, world: World) -> Case:
    """The attacker's look-alike collection and NFT, signed only by the attacker; then both
    update authorities handed to our system key, which never signs anything here."""
    attacker = chain.wallet()
    fake_collection = chain.collection(attacker)
    mint = chain.nft(attacker, Keypair().pubkey(), fake_collection)
    ours = world.system.pubkey()
    handover = [
        token2022.encode(token2022.MetadataUpdateAuthority(mint, attacker.pubkey(), ours)),
        token2022.encode(
            token2022.MetadataUpdateAuthority(fake_collection, attacker.pubkey(), ours)
        ),
        token2022.encode(token2022.GroupUpdateAuthority(fake_collection, attacker.pubkey(), ours)),
    ]
    chain.send(handover, attacker)
    group_acc = chain.call(
        "getAccountInfo", [str(fake_collection), {"encoding": "base64", "commitment": "confirmed"}]
    )
    group = token2022.decode_mint(base64.b64decode(group_acc["value"]["data"][0]))
    token_group = group.get(token2022.TokenGroup)
    assert token_group is not None
    # The handover happened: both authorities are now our key, which signed nothing.
    assert token_group.update_authority == ours

    def check(asset: Asset) -> None:
        assert asset.update_authority == str(ours)
        assert [(c.address, c.verified) for c in asset.creators] == [(str(ours), False)]
        assert asset.collection is not None
        assert asset.collection.address == str(fake_collection)
        assert asset.level == "5"
        # Nor does trusting our key as a creator make it genuine.
        assert not asset.is_genuine(creators=[str(ours)])
        assert not asset.is_created_by([str(ours)])

    return Case(mint, (str(world.collection),), frozenset({"collection"}), check)


def _control_case(
    chain: LocalChain, v: Variant, codes: set[str], check: Callable[[Asset], None] = _no_check
) -> Case:
    maker = chain.wallet()
    collection = chain.collection(maker)
    owners = [Keypair().pubkey() for _ in v.amounts]
    mint = build_variant(chain, maker, collection, owners, v)
    return Case(mint, (str(collection),), frozenset(codes), check)


def case_permanent_delegate(chain: LocalChain, world: World) -> Case:
    delegate = Keypair().pubkey()

    def check(asset: Asset) -> None:
        assert asset.permanent_delegate == str(delegate)
        assert "PermanentDelegate" in asset.extensions
        assert asset.owner is not None  # still an NFT with an owner: reported, not hidden

    v = Variant(extra=(token2022.PermanentDelegate(delegate),))
    return _control_case(chain, v, {"permanent_delegate"}, check)


def case_close_authority(chain: LocalChain, world: World) -> Case:
    closer = Keypair().pubkey()

    def check(asset: Asset) -> None:
        assert asset.close_authority == str(closer)

    v = Variant(extra=(token2022.MintCloseAuthority(closer),))
    return _control_case(chain, v, {"close_authority"}, check)


def case_freeze_authority(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        assert asset.freeze_authority is not None
        assert asset.frozen is False

    return _control_case(chain, Variant(freeze_authority=True), {"freeze_authority"}, check)


def case_default_frozen(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        assert asset.default_state == "frozen"
        assert asset.frozen is True  # the holder's account
        assert asset.freeze_authority is not None

    v = Variant(extra=(token2022.DefaultAccountState(AccountState.FROZEN),), freeze_authority=True)
    return _control_case(chain, v, {"default_state", "freeze_authority"}, check)


def case_transfer_hook(chain: LocalChain, world: World) -> Case:
    hook = Keypair().pubkey()

    def check(asset: Asset) -> None:
        assert asset.transfer_hook == str(hook)
        # The token account of a hooked mint carries the hook's marker too.
        assert "TransferHookAccount" in asset.account_extensions

    v = Variant(extra=(token2022.TransferHook(None, hook),))
    return _control_case(chain, v, {"transfer_hook", "account_extension"}, check)


def case_non_transferable(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        assert asset.non_transferable is True
        assert "NonTransferableAccount" in asset.account_extensions

    v = Variant(extra=(token2022.NonTransferable(),))
    return _control_case(chain, v, {"non_transferable", "account_extension"}, check)


def case_supply_three(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        # The holder of 1 of 3 tokens owns nothing.
        assert (asset.supply, asset.is_nft, asset.owner, asset.token_account) == (
            3,
            False,
            None,
            None,
        )

    return _control_case(chain, Variant(amounts=(1, 2)), {"supply"}, check)


def case_decimals_six(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        # The holder of 0.000001 owns nothing.
        assert (asset.decimals, asset.supply, asset.is_nft, asset.owner) == (6, 1, False, None)

    return _control_case(chain, Variant(decimals=6), {"decimals"}, check)


def case_live_mint_authority(chain: LocalChain, world: World) -> Case:
    def check(asset: Asset) -> None:
        assert (asset.mint_authority is not None, asset.is_nft, asset.owner) == (True, False, None)

    return _control_case(chain, Variant(keep_mint_authority=True), {"mint_authority"}, check)


def case_pointers_elsewhere(chain: LocalChain, world: World) -> Case:
    """A mint of the attacker's whose pointers aim at a genuine AIW3 NFT: a wallet following
    them shows our NFT's metadata and collection. Trusting the attacker's own collection as
    well shows that the pointers alone refuse it."""
    attacker = chain.wallet()
    fake_collection = chain.collection(attacker)
    mint = chain.nft(attacker, Keypair().pubkey(), fake_collection, level="9")
    me = attacker.pubkey()
    chain.send(
        [
            token2022.encode(token2022.UpdateMetadataPointer(mint, me, world.genuine)),
            token2022.encode(token2022.UpdateGroupMemberPointer(mint, me, world.genuine)),
        ],
        attacker,
    )

    def check(asset: Asset) -> None:
        assert asset.metadata_pointer == str(world.genuine)
        assert asset.member_pointer == str(world.genuine)
        assert asset.level == "9"  # the in-mint data, reported as is

    trusted = (str(world.collection), str(fake_collection))
    return Case(mint, trusted, frozenset({"metadata_pointer", "member_pointer"}), check)


CASES: dict[str, Callable[[LocalChain, World], Case]] = {
    "genuine": case_genuine,
    "counterfeit": case_counterfeit,
    "permanent_delegate": case_permanent_delegate,
    "close_authority": case_close_authority,
    "freeze_authority": case_freeze_authority,
    "default_state_frozen": case_default_frozen,
    "transfer_hook": case_transfer_hook,
    "non_transferable": case_non_transferable,
    "supply_3": case_supply_three,
    "decimals_6": case_decimals_six,
    "live_mint_authority": case_live_mint_authority,
    "pointers_elsewhere": case_pointers_elsewhere,
}


@pytest.fixture(scope="session")
def world(chain: LocalChain) -> World:
    return make_world(chain)


@pytest.fixture(scope="session")
def cases(chain: LocalChain, world: World) -> dict[str, Case]:
    """Every case built once on the shared chain (concurrently: each waits on its own
    confirmations), read by the library here and by the CLI."""
    with ThreadPoolExecutor(len(CASES)) as pool:
        futures = {name: pool.submit(build, chain, world) for name, build in CASES.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_library_judges_each_case(
    chain: LocalChain, world: World, cases: dict[str, Case], name: str
) -> None:
    case = cases[name]
    found = chain.fetch(case.mint)
    asset = found.value
    verdict = asset.verdict(collections=case.collections)
    assert set(verdict.codes) == case.codes, verdict.reasons
    assert verdict.genuine == (not case.codes)
    assert asset.is_genuine(collections=case.collections) == verdict.genuine
    case.check(asset)
    # Never genuine without trusting a collection, whatever the creators.
    assert not asset.is_genuine(creators=[str(world.system.pubkey())])


def test_a_burnt_genuine_nft_is_no_longer_genuine(chain: LocalChain, world: World) -> None:
    holder = chain.wallet()
    mint = chain.nft(world.system, holder.pubkey(), world.collection)
    trusted = [str(world.collection)]
    assert chain.fetch(mint).value.is_genuine(collections=trusted)
    chain.send(STD.burn_plan(owner=holder.pubkey(), mint=mint).instructions, holder)
    asset = chain.fetch(mint).value
    assert (asset.burnt, asset.owner) == (True, None)
    assert asset.verdict(collections=trusted).codes == ("burnt",)
    assert not asset.is_created_by(collections=trusted)


class _ActsBetweenReads(RpcClient):
    """The real client; right after its first getTokenLargestAccounts answer, ``act`` runs a
    real transaction on the chain, as another wallet would between two of our reads."""

    def __init__(self, url: str, act: Callable[[], None]) -> None:
        super().__init__([RpcEndpoint(url=url, name="test")], metrics=CollectorRegistry())
        self._act: Callable[[], None] | None = act

    async def get_token_largest_accounts(self, mint: Pubkey, **kwargs: Any) -> Any:
        found = await super().get_token_largest_accounts(mint, **kwargs)
        if self._act is not None:
            act, self._act = self._act, None
            await asyncio.to_thread(act)
        return found


def _fetch_with(chain: LocalChain, mint: Pubkey, act: Callable[[], None]) -> Slotted[Asset]:
    async def read() -> Slotted[Asset]:
        async with _ActsBetweenReads(chain.url, act) as client:
            return await fetch_asset(client, mint)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def test_a_burn_between_reads_reads_as_burnt(chain: LocalChain, world: World) -> None:
    holder = chain.wallet()
    mint = chain.nft(world.system, holder.pubkey(), world.collection)
    burn = STD.burn_plan(owner=holder.pubkey(), mint=mint).instructions
    found = _fetch_with(chain, mint, lambda: chain.send(burn, holder))
    # One snapshot: the mint's supply and the (closed) holder account agree.
    assert (found.value.burnt, found.value.owner, found.value.supply) == (True, None, 0)


def test_a_transfer_between_reads_still_finds_the_owner(chain: LocalChain, world: World) -> None:
    holder = chain.wallet()
    mint = chain.nft(world.system, holder.pubkey(), world.collection)
    other = Keypair().pubkey()
    # The token moves to an account the first largest-accounts answer did not name.
    move = [
        ata.create(holder.pubkey(), other, mint, T22),
        spl_token.encode(
            spl_token.TransferChecked(
                T22,
                ata.address(holder.pubkey(), mint, T22),
                mint,
                ata.address(other, mint, T22),
                holder.pubkey(),
                1,
                0,
            )
        ),
    ]
    found = _fetch_with(chain, mint, lambda: chain.send(move, holder))
    assert (found.value.owner, found.value.amount, found.value.burnt) == (str(other), 1, False)
    assert found.value.token_account == str(ata.address(other, mint, T22))
