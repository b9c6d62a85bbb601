"""The local chain's state machine, in-process (no I/O): its configuration checks, and its
properties under random transfers, slots and fork drops.

The model: the balances are the initial ones plus a replay of the transfers of the blocks that
survive, and each commitment level sees exactly the blocks up to its height.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.account import Account
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from chain.localnet import CommitmentLevel, LocalChain, LocalnetConfig
from chain.localnet.errors import RpcError
from core.errors import ConfigError

SOL = 10**9
FEE = 5000
DEPTH = 3
WALLETS = 3

_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("tx"),
            st.integers(0, WALLETS - 1),
            st.integers(0, WALLETS - 1),
            st.integers(1, 10**6),
        ),
        st.tuples(st.just("slot")),
        st.tuples(st.just("drop"), st.integers(1, DEPTH + 2)),
    ),
    max_size=30,
)


def _balances(blocks: list[list[tuple[int, int, int]]]) -> list[int]:
    out = [10 * SOL] * WALLETS
    for block in blocks:
        for src, dst, amount in block:
            out[src] -= amount + FEE
            out[dst] += amount
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops)
def test_state_is_a_replay_of_the_surviving_blocks(ops: list[tuple[object, ...]]) -> None:
    chain = LocalChain(LocalnetConfig(finality_depth=DEPTH))
    wallets = [Keypair() for _ in range(WALLETS)]
    for wallet in wallets:
        chain.set_account(wallet.pubkey(), Account(10 * SOL, b"", SYSTEM_PROGRAM))
    for _ in range(DEPTH + 1):
        chain.advance_slot()  # the funding is final and can never be dropped
    first = chain.block_at(CommitmentLevel.FINALIZED).height + 1
    blocks: list[list[tuple[int, int, int]]] = [[] for _ in range(first, chain.current.height + 1)]
    counter = 0
    for op in ops:
        if op[0] == "tx":
            _, src, dst, amount = op
            assert isinstance(src, int)
            assert isinstance(dst, int)
            assert isinstance(amount, int)
            counter += 1
            amount += counter  # unique bytes: never an accidental duplicate
            payer = wallets[src]
            ix = transfer(
                TransferParams(
                    from_pubkey=payer.pubkey(), to_pubkey=wallets[dst].pubkey(), lamports=amount
                )
            )
            tx = Transaction([payer], Message([ix], payer.pubkey()), chain.current.blockhash)
            chain.submit(
                bytes(tx), skip_preflight=False, preflight_commitment=CommitmentLevel.PROCESSED
            )
            blocks[-1].append((src, dst, amount))
        elif op[0] == "slot":
            chain.advance_slot()
            blocks.append([])
        else:
            count = op[1]
            assert isinstance(count, int)
            droppable = chain.current.height - chain.block_at(CommitmentLevel.FINALIZED).height
            if count > droppable:
                with pytest.raises(RpcError) as refused:
                    chain.drop_slots(count)
                assert refused.value.code == -32602
                continue
            chain.drop_slots(count)
            del blocks[-count:]
            blocks.append([])
        assert first + len(blocks) - 1 == chain.current.height

    levels = {
        CommitmentLevel.PROCESSED: blocks,
        CommitmentLevel.CONFIRMED: blocks[
            : chain.block_at(CommitmentLevel.CONFIRMED).height - first + 1
        ],
        CommitmentLevel.FINALIZED: blocks[
            : chain.block_at(CommitmentLevel.FINALIZED).height - first + 1
        ],
    }
    for level, seen in levels.items():
        expected = _balances(seen)
        for wallet, lamports in zip(wallets, expected, strict=True):
            account = chain.get_account(wallet.pubkey(), level)
            assert account is not None
            assert account.lamports == lamports, level
    # The per-address history holds exactly the surviving transactions, newest first.
    for index, wallet in enumerate(wallets):
        listed = chain.signatures_for_address(
            wallet.pubkey(),
            commitment=CommitmentLevel.CONFIRMED,
            limit=1000,
            before=None,
            until=None,
        )
        involved = [
            t for block in levels[CommitmentLevel.CONFIRMED] for t in block if index in (t[0], t[1])
        ]
        assert len(listed) == len(involved)
        assert [r.seq for r in listed] == sorted((r.seq for r in listed), reverse=True)


@pytest.mark.parametrize(
    ("field", "message"),
    [("slot_ms", "slot_ms must be at least 1"), ("finality_depth", "finality_depth must be")],
)
def test_config_checks_raise_config_error(field: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalnetConfig(**{field: 0})  # type: ignore[arg-type]
