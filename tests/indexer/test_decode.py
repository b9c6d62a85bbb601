"""indexer.decode on real transactions of the local chain, and its rules as properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from chain.codecs import memo, spl_token
from chain.programs import MEMO_PROGRAM, MEMO_V1_PROGRAM, TOKEN_2022_PROGRAM, TOKEN_METADATA_PROGRAM
from chain.rpc import RpcClient
from indexer.decode import (
    ActivationMemo,
    Burned,
    Closed,
    DecodedTx,
    DelegateChanged,
    GroupMember,
    MetadataField,
    MetadataSet,
    MintCreated,
    Minted,
    RawInstruction,
    TxRef,
    decode_parts,
    decode_transaction,
)

from . import chainops as ops
from .chainops import Deployment


async def _decoded(rpc: RpcClient, signature: Signature) -> DecodedTx:
    result = await rpc.get_transaction(signature, commitment=Confirmed)
    assert result is not None
    return decode_transaction(result, 0)


def _of(tx: DecodedTx, kind: type) -> list:  # type: ignore[type-arg]
    return [c for c in tx.changes if isinstance(c, kind)]


async def test_mint_into_the_collection(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    owner = Keypair().pubkey()
    mint, sig = await ops.mint(client, deployment.system, owner, collection=deployment.collection)
    tx = await _decoded(rpc, sig)
    m = str(mint)
    assert tx.ok
    assert tx.ref.signature == str(sig)
    assert tx.ref.slot > 0
    assert _of(tx, MintCreated) == [MintCreated(m, str(TOKEN_2022_PROGRAM), 0, 3)]
    [meta] = _of(tx, MetadataSet)
    assert meta.mint == m
    assert meta.update_authority == str(deployment.system.pubkey())
    assert MetadataField(m, "level", "1", 5) in tx.changes
    assert _of(tx, GroupMember) == [GroupMember(m, str(deployment.collection), 6)]
    assert [c.amount for c in _of(tx, Minted)] == [1]
    [balance] = tx.balances
    assert (balance.mint, balance.owner, balance.amount) == (m, str(owner), 1)
    assert balance.account == str(ops.ata_of(owner, mint))
    assert tx.transfers == ()  # a mint is not a transfer


async def test_plain_transfer_names_no_mint_but_the_balances_do(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    alice, bob = await ops.fund(client), Keypair().pubkey()
    mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
    await ops.create_ata(client, alice, bob, mint)
    sig = await ops.transfer_plain(
        client, alice, ops.ata_of(alice.pubkey(), mint), ops.ata_of(bob, mint)
    )
    result = await rpc.get_transaction(sig, commitment=Confirmed)
    assert result is not None
    keys = result.transaction.transaction.message.account_keys  # type: ignore[union-attr]
    assert mint not in keys
    assert bob not in keys
    tx = decode_transaction(result, 0)
    [move] = tx.transfers
    assert (move.mint, move.from_owner, move.to_owner) == (
        str(mint),
        str(alice.pubkey()),
        str(bob),
    )
    assert {(b.owner, b.amount) for b in tx.balances} == {(str(alice.pubkey()), 0), (str(bob), 1)}


async def test_transfer_to_a_fresh_account_then_burn_and_lone_close(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    alice, bob = await ops.fund(client), await ops.fund(client)
    mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
    fresh = await ops.fresh_account(client, alice, bob.pubkey(), mint)
    await ops.transfer_plain(client, alice, ops.ata_of(alice.pubkey(), mint), fresh)

    burnt = await _decoded(rpc, await ops.burn(client, bob, mint, fresh))
    assert _of(burnt, Burned) == [Burned(str(mint), str(fresh), 1, 0)]
    assert _of(burnt, Closed) == [Closed(str(fresh), 1)]
    assert [(b.account, b.amount, b.closed) for b in burnt.balances] == [(str(fresh), 0, True)]
    assert burnt.transfers == ()

    alice_ata = ops.ata_of(alice.pubkey(), mint)
    closed = await _decoded(rpc, await ops.close(client, alice, alice_ata))
    assert _of(closed, Closed) == [Closed(str(alice_ata), 0)]
    assert [(b.mint, b.closed) for b in closed.balances] == [(str(mint), True)]


async def test_checked_transfer_and_delegate(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    alice, bob = await ops.fund(client), Keypair().pubkey()
    mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
    account = ops.ata_of(alice.pubkey(), mint)
    delegate = Keypair().pubkey()
    approved = await _decoded(rpc, await ops.approve(client, alice, account, delegate))
    assert _of(approved, DelegateChanged) == [DelegateChanged(str(account), str(delegate), 0)]
    revoked = await _decoded(rpc, await ops.approve(client, alice, account, None))
    assert _of(revoked, DelegateChanged) == [DelegateChanged(str(account), None, 0)]
    moved = await _decoded(rpc, await ops.transfer_checked(client, alice, mint, bob))
    [move] = moved.transfers
    assert (move.to_owner, move.to_account) == (str(bob), str(ops.ata_of(bob, mint)))


async def test_activation_memos_genuine_and_forged(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    alice, mallory = await ops.fund(client), await ops.fund(client)
    mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
    genuine = await _decoded(rpc, await ops.activate(client, alice, mint))
    assert _of(genuine, ActivationMemo) == [ActivationMemo(str(mint), (str(alice.pubkey()),), 0)]
    forged = await _decoded(rpc, await ops.forged_activation(client, mallory, alice.pubkey(), mint))
    # The memo executed and names alice, but alice did not sign it.
    assert _of(forged, ActivationMemo) == [ActivationMemo(str(mint), (), 0)]
    assert str(alice.pubkey()) not in forged.signers


async def test_a_failed_transaction_changes_nothing(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    alice = await ops.fund(client)
    mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)

    # Burning 2 of a supply of 1 fails on chain (preflight skipped so that it lands).
    ix = spl_token.encode(
        spl_token.BurnChecked(
            TOKEN_2022_PROGRAM, ops.ata_of(alice.pubkey(), mint), mint, alice.pubkey(), 2, 0
        )
    )
    tx = Transaction([alice], Message([ix], alice.pubkey()), await ops.blockhash(client))
    sig = (await client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))).value
    await ops.wait_status(client, sig, "confirmed")
    decoded = await _decoded(rpc, sig)
    assert not decoded.ok
    assert decoded.changes == ()
    assert decoded.balances == ()


# --- properties of the pure part ---------------------------------------------------------------

_KEYS = [Pubkey.new_unique() for _ in range(8)]
_MINT = str(_KEYS[7])
_ref = TxRef(10, 0, "sig")


@given(
    holders_before=st.lists(st.sampled_from(range(4)), max_size=3),
    holders_after=st.lists(st.sampled_from(range(4)), max_size=3),
    amount=st.integers(1, 3),
)
def test_owner_only_from_an_account_holding_the_one_token(
    holders_before: list[int], holders_after: list[int], amount: int
) -> None:
    def rows(holders: list[int]) -> list[tuple[str, str, str | None, int, int]]:
        # Four accounts, owned by owners 0..3; the listed ones hold ``amount`` tokens.
        return [
            (f"acct{i}", _MINT, f"owner{i}", amount if i in holders else 0, 0) for i in range(4)
        ]

    tx = decode_parts(_ref, _KEYS, 1, [], pre=rows(holders_before), post=rows(holders_after))
    one_before = len(set(holders_before)) == 1 and amount == 1
    one_after = len(set(holders_after)) == 1 and amount == 1
    if tx.transfers:
        [move] = tx.transfers
        assert one_before
        assert one_after
        assert move.from_owner == f"owner{holders_before[0]}"
        assert move.to_owner == f"owner{holders_after[0]}"
    else:
        assert not (one_before and one_after) or set(holders_before) == set(holders_after)
    assert all(not b.closed for b in tx.balances)


@given(signer_count=st.integers(0, 3), named=st.integers(0, 2))
def test_a_memo_v1_account_is_a_signer_only_if_the_transaction_says_so(
    signer_count: int, named: int
) -> None:
    keys = [*_KEYS[:3], MEMO_V1_PROGRAM]
    text = f"{memo.ACTIVATE_PREFIX}{_MINT}".encode()
    ix = RawInstruction(3, bytes([named]), text, 0)
    tx = decode_parts(_ref, keys, signer_count, [ix], pre=[], post=[])
    [change] = tx.changes
    assert isinstance(change, ActivationMemo)
    assert change.mint == _MINT
    assert change.signers == ((str(keys[named]),) if named < signer_count else ())


@given(data=st.binary(max_size=64), program=st.sampled_from(range(4)))
def test_no_instruction_bytes_break_decoding(data: bytes, program: int) -> None:
    programs = [TOKEN_2022_PROGRAM, MEMO_PROGRAM, MEMO_V1_PROGRAM, TOKEN_METADATA_PROGRAM]
    keys = [*_KEYS[:6], programs[program]]
    ix = RawInstruction(6, bytes(range(6)), data, 0)
    tx = decode_parts(_ref, keys, 2, [ix], pre=[], post=[])
    assert tx.ok
    assert tx.skipped + len(tx.changes) <= 2
