"""The local chain's token indexes and parsed token data, on accounts written by the real SPL Token
and Token-2022 programs (in-process ``LocalChain``, no I/O), and on junk bytes a test may load."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction

from chain.codecs import ata, spl_token, token2022
from chain.codecs.spl_token import AccountState
from chain.localnet import CommitmentLevel, LocalChain, LocalnetConfig
from chain.localnet.methods import RpcMethods
from chain.localnet.runtime import TxRecord
from chain.localnet.tokens import parse_mint, parse_token_account
from chain.programs import TOKEN_2022_PROGRAM, TOKEN_PROGRAM
from chain.standards import MintRequest, get_standard
from core.errors import CodecError

PROCESSED = CommitmentLevel.PROCESSED


def _chain() -> tuple[LocalChain, Keypair]:
    chain = LocalChain(LocalnetConfig(finality_depth=3))
    payer = Keypair()
    chain.set_account(payer.pubkey(), Account(10**12, b"", SYSTEM_PROGRAM))
    return chain, payer


def _send(chain: LocalChain, payer: Keypair, ixs: list[Instruction], *extra: Keypair) -> TxRecord:
    tx = Transaction([payer, *extra], Message(ixs, payer.pubkey()), chain.current.blockhash)
    signature = chain.submit(bytes(tx), skip_preflight=False, preflight_commitment=PROCESSED)
    record = chain.transaction(signature, PROCESSED)
    assert record is not None
    assert record.err is None, record.logs
    return record


def _account(chain: LocalChain, key: Pubkey) -> Account:
    account = chain.get_account(key, PROCESSED)
    assert account is not None
    return account


def _parsed(chain: LocalChain, key: Pubkey) -> Any:
    reply = RpcMethods(chain).call(
        "getAccountInfo", [str(key), {"encoding": "jsonParsed", "commitment": "processed"}]
    )
    return reply["value"]["data"]


def _classic_mint_and_account(
    chain: LocalChain, payer: Keypair, holder: Pubkey, amount: int
) -> tuple[Pubkey, Pubkey]:
    mint = Keypair()
    m, p = mint.pubkey(), payer.pubkey()
    account = ata.address(holder, m, TOKEN_PROGRAM)
    size = spl_token.MINT_SIZE
    _send(
        chain,
        payer,
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=p,
                    to_pubkey=m,
                    lamports=chain.minimum_balance(size),
                    space=size,
                    owner=TOKEN_PROGRAM,
                )
            ),
            spl_token.encode(spl_token.InitializeMint2(TOKEN_PROGRAM, m, 6, p, p)),
            ata.create(p, holder, m, TOKEN_PROGRAM),
            spl_token.encode(spl_token.MintTo(TOKEN_PROGRAM, m, account, p, amount)),
        ],
        mint,
    )
    return m, account


def test_classic_token_account_and_mint_including_frozen() -> None:
    chain, payer = _chain()
    holder = Keypair().pubkey()
    mint, account = _classic_mint_and_account(chain, payer, holder, 5_000_000)

    token = parse_token_account(_account(chain, account))
    assert token is not None
    assert (token.mint, token.owner, token.amount) == (mint, holder, 5_000_000)
    assert (token.state, token.program) == (AccountState.INITIALIZED, TOKEN_PROGRAM)
    parsed_mint = parse_mint(_account(chain, mint))
    assert parsed_mint is not None
    assert (parsed_mint.decimals, parsed_mint.supply) == (6, 5_000_000)
    assert parsed_mint.mint_authority == parsed_mint.freeze_authority == payer.pubkey()
    # Each is only what it is.
    assert parse_mint(_account(chain, account)) is None
    assert parse_token_account(_account(chain, mint)) is None

    freeze = spl_token.FreezeAccount(TOKEN_PROGRAM, account, mint, payer.pubkey())
    record = _send(chain, payer, [spl_token.encode(freeze)])
    frozen = parse_token_account(_account(chain, account))
    assert frozen is not None
    assert frozen.state == AccountState.FROZEN
    # The transaction's token balances: the account before and after, at its index.
    index = record.account_keys.index(account)
    assert [(b.account_index, b.token) for b in record.pre_token_balances] == [(index, token)]
    assert [(b.account_index, b.token) for b in record.post_token_balances] == [(index, frozen)]
    assert {b.decimals for b in record.post_token_balances} == {6}
    assert [pubkey for pubkey, _, _ in chain.token_accounts(owner=holder)] == [account]
    info = _parsed(chain, account)
    assert info["program"] == "spl-token"
    assert info["parsed"]["info"]["state"] == "frozen"
    assert info["parsed"]["info"]["tokenAmount"]["uiAmountString"] == "5"


def test_token_2022_nft_with_extensions() -> None:
    chain, payer = _chain()
    holder = Keypair().pubkey()
    mint = Keypair()
    plan = get_standard("token2022", rent=chain.minimum_balance).mint_plan(
        system=payer.pubkey(),
        owner=holder,
        mint=mint.pubkey(),
        request=MintRequest(level="2", uri="https://example.invalid/2.json"),
    )
    _send(chain, payer, list(plan.instructions), mint)
    account = ata.address(holder, mint.pubkey(), TOKEN_2022_PROGRAM)

    mint_account = _account(chain, mint.pubkey())
    token_account = _account(chain, account)
    # Both are longer than the base layouts: account-type byte and TLV extensions.
    assert len(mint_account.data) > spl_token.ACCOUNT_SIZE
    assert len(token_account.data) > spl_token.ACCOUNT_SIZE
    parsed_mint = parse_mint(mint_account)
    assert parsed_mint is not None
    assert (parsed_mint.decimals, parsed_mint.supply, parsed_mint.mint_authority) == (0, 1, None)
    token = parse_token_account(token_account)
    assert token is not None
    assert (token.mint, token.owner, token.amount) == (mint.pubkey(), holder, 1)
    assert (token.state, token.program) == (AccountState.INITIALIZED, TOKEN_2022_PROGRAM)
    assert parse_mint(token_account) is None
    assert parse_token_account(mint_account) is None
    assert [pubkey for pubkey, _, _ in chain.token_accounts(mint=mint.pubkey())] == [account]
    assert _parsed(chain, mint.pubkey())["parsed"]["type"] == "mint"
    assert _parsed(chain, account)["program"] == "spl-token-2022"


def test_uninitialized_and_foreign_accounts_are_not_tokens() -> None:
    for program in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM):
        empty_account = Account(10**7, bytes(spl_token.ACCOUNT_SIZE), program)
        empty_mint = Account(10**7, bytes(spl_token.MINT_SIZE), program)
        assert parse_token_account(empty_account) is None
        assert parse_mint(empty_mint) is None
    chain, payer = _chain()
    _, account = _classic_mint_and_account(chain, payer, Keypair().pubkey(), 1)
    real = _account(chain, account)
    # The same bytes under another owner are not a token account.
    assert parse_token_account(Account(real.lamports, bytes(real.data), SYSTEM_PROGRAM)) is None
    assert parse_token_account(None) is None
    assert parse_mint(None) is None


def test_token_2022_index_reads_the_base_and_refuses_junk() -> None:
    chain, payer = _chain()
    holder, mint = Keypair().pubkey(), Keypair()
    plan = get_standard("token2022", rent=chain.minimum_balance).mint_plan(
        system=payer.pubkey(),
        owner=holder,
        mint=mint.pubkey(),
        request=MintRequest(level="1", uri="https://example.invalid/1.json"),
    )
    _send(chain, payer, list(plan.instructions), mint)
    key = ata.address(holder, mint.pubkey(), TOKEN_2022_PROGRAM)
    real = _account(chain, key)
    expected = parse_token_account(real)
    assert expected is not None
    # Like a node's token index, only the base and the account type count: an extension
    # entry overrunning the account does not hide the balance.
    overrun = bytes(real.data) + (0xFFFF).to_bytes(2, "little") * 2
    assert parse_token_account(Account(real.lamports, overrun, TOKEN_2022_PROGRAM)) == expected
    # An unknown account type is not a token account: the write still lands, unindexed.
    junk = bytearray(real.data)
    junk[token2022.ACCOUNT_TYPE_OFFSET] = 9
    junk_account = Account(real.lamports, bytes(junk), TOKEN_2022_PROGRAM)
    assert parse_token_account(junk_account) is None
    assert parse_mint(junk_account) is None
    chain.set_account(key, junk_account)
    assert chain.token_accounts(owner=holder) == []
    # jsonParsed falls back to the raw bytes, as a node does for data it cannot parse.
    encoded, encoding = _parsed(chain, key)
    assert (base64.b64decode(encoded), encoding) == (bytes(junk), "base64")


@given(
    st.binary(max_size=400),
    st.sampled_from([TOKEN_PROGRAM, TOKEN_2022_PROGRAM]),
)
def test_arbitrary_bytes_owned_by_a_token_program_never_fail(data: bytes, program: Pubkey) -> None:
    account = Account(1, data, program)
    token = parse_token_account(account)
    mint = parse_mint(account)
    assert token is None or mint is None
    if token is not None:
        assert token.state in (AccountState.INITIALIZED, AccountState.FROZEN)
        assert token.program == program
    if mint is not None:
        assert mint.is_initialized


_KEYS = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


@st.composite
def _extended_token_2022_data(draw: st.DrawFn) -> bytes:
    """A valid mint or token account base, then padding and any account-type byte and tail:
    what the index's type-byte shortcut looks at."""
    if draw(st.booleans()):
        base = spl_token.encode_mint(
            spl_token.MintState(
                draw(st.none() | _KEYS), draw(st.integers(0, 2**64 - 1)), 0, True, None
            )
        )
    else:
        base = spl_token.encode_token_account(
            spl_token.TokenAccountState(
                draw(_KEYS), draw(_KEYS), 1, None, AccountState.INITIALIZED, None, 0, None
            )
        )
    kind = draw(st.sampled_from([0, 1, 2, 3]))
    tail = draw(st.binary(max_size=64))
    return base + bytes(token2022.ACCOUNT_TYPE_OFFSET - len(base)) + bytes([kind]) + tail


@given(_extended_token_2022_data())
def test_the_type_byte_shortcut_agrees_with_the_token_2022_decoders(data: bytes) -> None:
    account = Account(1, data, TOKEN_2022_PROGRAM)
    expected_token: Pubkey | None = None
    expected_mint: int | None = None
    try:
        state = token2022.decode_account_base(data)
        if state.state != AccountState.UNINITIALIZED:
            expected_token = state.mint
    except CodecError:
        pass
    try:
        base = token2022.decode_mint_base(data)
        if base.is_initialized:
            expected_mint = base.supply
    except CodecError:
        pass
    token = parse_token_account(account)
    mint = parse_mint(account)
    assert (token.mint if token is not None else None) == expected_token
    assert (mint.supply if mint is not None else None) == expected_mint
