"""jsonParsed on the local chain: token and ATA instructions, token accounts and mints, and v0
transactions with lookup tables, memos (also in signature lists), in a node's shapes."""

from __future__ import annotations

import base64
import struct
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TokenAccountOpts
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import get_associated_token_address

from chain.codecs import token2022
from chain.codecs.spl_token import AccountState, MintState
from chain.keys import Signer
from chain.localnet import Localnet
from chain.localnet.parsed import token_extensions
from chain.programs import ADDRESS_LOOKUP_TABLE_PROGRAM
from tests.harness.localnet import (
    T22,
    burn_and_close_tx,
    mint_nft,
    mint_nft_tx,
    mint_rent_size,
    raw_rpc,
    send,
    transfer_nft_tx,
)

SOL = 10**9


async def _parsed_tx(url: str, signature: Any) -> dict[str, Any]:
    body = await raw_rpc(
        url,
        "getTransaction",
        [
            str(signature),
            {
                "commitment": "confirmed",
                "encoding": "jsonParsed",
                "maxSupportedTransactionVersion": 0,
            },
        ],
    )
    result: dict[str, Any] = body["result"]
    return result


async def test_json_parsed_token_instructions(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        payer, holder, receiver = Keypair(), Keypair(), Keypair()
        await rpc.request_airdrop(payer.pubkey(), SOL)
        await rpc.request_airdrop(holder.pubkey(), SOL)
        mint = Keypair()
        rent = (await rpc.get_minimum_balance_for_rent_exemption(mint_rent_size())).value
        minted = mint_nft_tx(payer, mint, holder.pubkey(), rent, chain.current.blockhash)
        await send(rpc, minted)
        moved = transfer_nft_tx(holder, mint.pubkey(), receiver.pubkey(), chain.current.blockhash)
        await send(rpc, moved)
        chain.advance_slot()

        tx = await _parsed_tx(url, minted.signatures[0])
        ixs = tx["transaction"]["message"]["instructions"]
        kinds = [
            (ix.get("program"), ix["parsed"]["type"] if "parsed" in ix else None) for ix in ixs
        ]
        assert kinds == [
            ("system", "createAccount"),
            (None, None),  # MetadataPointer initialize: partially decoded
            ("spl-token-2022", "initializeMint2"),
            (None, None),  # token-metadata interface
            (None, None),
            ("spl-associated-token-account", "createIdempotent"),
            ("spl-token-2022", "mintTo"),
            ("spl-token-2022", "setAuthority"),
        ]
        assert ixs[0]["parsed"]["info"]["owner"] == str(T22)
        assert ixs[2]["parsed"]["info"] == {
            "mint": str(mint.pubkey()),
            "decimals": 0,
            "mintAuthority": str(payer.pubkey()),
        }
        assert ixs[6]["parsed"]["info"]["amount"] == "1"
        assert ixs[7]["parsed"]["info"]["authorityType"] == "mintTokens"
        assert ixs[7]["parsed"]["info"]["newAuthority"] is None
        keys = tx["transaction"]["message"]["accountKeys"]
        assert keys[0] == {
            "pubkey": str(payer.pubkey()),
            "writable": True,
            "signer": True,
            "source": "transaction",
        }
        inner = tx["meta"]["innerInstructions"]
        inner_types = [
            i["parsed"]["type"] for group in inner for i in group["instructions"] if "parsed" in i
        ]
        assert "initializeImmutableOwner" in inner_types
        assert all(i["stackHeight"] == 2 for group in inner for i in group["instructions"])

        tx = await _parsed_tx(url, moved.signatures[0])
        checked = tx["transaction"]["message"]["instructions"][1]["parsed"]
        assert checked["type"] == "transferChecked"
        assert checked["info"]["tokenAmount"]["amount"] == "1"
        assert checked["info"]["authority"] == str(holder.pubkey())

        burned = burn_and_close_tx(receiver, mint.pubkey(), chain.current.blockhash)
        await rpc.request_airdrop(receiver.pubkey(), SOL)
        await send(rpc, burned)
        chain.advance_slot()
        tx = await _parsed_tx(url, burned.signatures[0])
        types = [ix["parsed"]["type"] for ix in tx["transaction"]["message"]["instructions"]]
        assert types == ["burnChecked", "closeAccount"]


async def test_json_parsed_token_accounts_and_balances(
    client: AsyncClient, funded: Keypair
) -> None:
    mint, _ = await mint_nft(client, funded, funded.pubkey())
    parsed = (
        await client.get_token_accounts_by_owner_json_parsed(
            funded.pubkey(), TokenAccountOpts(mint=mint.pubkey()), Confirmed
        )
    ).value
    assert len(parsed) == 1
    info: dict[str, Any] = parsed[0].account.data.parsed["info"]  # type: ignore[assignment]
    assert info["mint"] == str(mint.pubkey())
    assert info["owner"] == str(funded.pubkey())
    assert info["tokenAmount"]["amount"] == "1"
    assert parsed[0].account.data.program == "spl-token-2022"
    balance = (await client.get_token_account_balance(parsed[0].pubkey, Confirmed)).value
    assert balance.amount == "1"
    assert balance.decimals == 0
    assert balance.ui_amount_string == "1"


async def test_v0_transaction_with_lookup_table(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    url = manual_localnet.rpc_url
    async with AsyncClient(url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        dest = Keypair().pubkey()
        table = Keypair().pubkey()
        # An active lookup table holding `dest`, extended before the current slot.
        meta = struct.pack("<IQQB", 1, 2**64 - 1, 0, 0) + b"\x01" + bytes(wallet.pubkey()) + b"\0\0"
        data = meta + bytes(dest)
        reply = await raw_rpc(
            url,
            "localnet_setAccount",
            [
                str(table),
                {
                    "lamports": SOL,
                    "owner": str(ADDRESS_LOOKUP_TABLE_PROGRAM),
                    "data": [base64.b64encode(data).decode(), "base64"],
                },
            ],
        )
        assert "error" not in reply
        chain.advance_slot()
        lookup = AddressLookupTableAccount(table, [dest])
        message = MessageV0.try_compile(
            wallet.pubkey(),
            [
                transfer(
                    TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=dest, lamports=SOL // 10)
                )
            ],
            [lookup],
            chain.current.blockhash,
        )
        assert message.address_table_lookups
        tx = VersionedTransaction(message, [wallet])
        await send(rpc, tx)
        chain.advance_slot()
        got = (
            await rpc.get_transaction(
                tx.signatures[0], commitment=Confirmed, max_supported_transaction_version=0
            )
        ).value
        assert got is not None
        meta_out = got.transaction.meta
        assert meta_out is not None
        assert meta_out.err is None
        assert meta_out.loaded_addresses is not None
        assert list(meta_out.loaded_addresses.writable) == [dest]
        assert len(meta_out.post_balances) == 3  # wallet, system program, dest (loaded)
        assert meta_out.post_balances[2] == SOL // 10
        listed = (await rpc.get_signatures_for_address(dest, commitment=Confirmed)).value
        assert [s.signature for s in listed] == [tx.signatures[0]]


async def test_memo_in_signature_list(manual_localnet: Localnet) -> None:
    chain = manual_localnet.chain
    async with AsyncClient(manual_localnet.rpc_url) as rpc:
        wallet = Keypair()
        await rpc.request_airdrop(wallet.pubkey(), SOL)
        text = f"aiw3:activate:{Keypair().pubkey()}"
        memo = create_memo(
            MemoParams(program_id=MEMO_PROGRAM_ID, signer=wallet.pubkey(), message=text.encode())
        )
        tx = Transaction([wallet], Message([memo], wallet.pubkey()), chain.current.blockhash)
        await send(rpc, tx)
        chain.advance_slot()
        listed = (
            await rpc.get_signatures_for_address(wallet.pubkey(), limit=1, commitment=Confirmed)
        ).value
        assert listed[0].signature == tx.signatures[0]
        assert listed[0].memo == f"[{len(text)}] {text}"
        parsed = await _parsed_tx(manual_localnet.rpc_url, tx.signatures[0])
        assert parsed["transaction"]["message"]["instructions"][0]["parsed"] == text


async def test_json_parsed_carries_the_token_2022_extensions(
    system_wallet: Signer, solana_client: AsyncClient, rpc_url: str
) -> None:
    """A wallet reading parsed accounts sees the NFT's name, uri and level, as on mainnet."""
    holder = Keypair().pubkey()
    mint, _ = await mint_nft(solana_client, system_wallet, holder, level=4)
    config = {"encoding": "jsonParsed", "commitment": "confirmed"}
    reply = await raw_rpc(rpc_url, "getAccountInfo", [str(mint.pubkey()), config])
    info = reply["result"]["value"]["data"]["parsed"]["info"]
    authority = str(system_wallet.pubkey)
    assert info["extensions"] == [
        {
            "extension": "metadataPointer",
            "state": {"authority": authority, "metadataAddress": str(mint.pubkey())},
        },
        {
            "extension": "tokenMetadata",
            "state": {
                "updateAuthority": authority,
                "mint": str(mint.pubkey()),
                "name": "AIW3 Equity L4",
                "symbol": "AIW3",
                "uri": "https://example.invalid/nft.json",
                "additionalMetadata": [["level", "4"]],
            },
        },
    ]
    ata = get_associated_token_address(holder, mint.pubkey(), T22)
    reply = await raw_rpc(rpc_url, "getAccountInfo", [str(ata), config])
    info = reply["result"]["value"]["data"]["parsed"]["info"]
    assert info["extensions"] == [{"extension": "immutableOwner"}]


def test_group_extensions_render_in_agaves_shape() -> None:
    collection, member_mint, authority = (Keypair().pubkey() for _ in range(3))
    base = MintState(None, 1, 0, True, None)
    data = token2022.encode_mint(
        token2022.Mint2022(
            base,
            (
                token2022.GroupPointer(authority, collection),
                token2022.TokenGroup(authority, collection, 2, 10),
                token2022.GroupMemberPointer(None, member_mint),
                token2022.TokenGroupMember(member_mint, collection, 2),
            ),
        )
    )
    assert token_extensions(T22, data, mint=True) == [
        {
            "extension": "groupPointer",
            "state": {"authority": str(authority), "groupAddress": str(collection)},
        },
        {
            "extension": "tokenGroup",
            "state": {
                "updateAuthority": str(authority),
                "mint": str(collection),
                "size": 2,
                "maxSize": 10,
            },
        },
        {
            "extension": "groupMemberPointer",
            "state": {"authority": None, "memberAddress": str(member_mint)},
        },
        {
            "extension": "tokenGroupMember",
            "state": {"mint": str(member_mint), "group": str(collection), "memberNumber": 2},
        },
    ]
    # Classic-program accounts and unextended Token-2022 ones carry no list.
    assert token_extensions(T22, data[:82], mint=True) == []


def test_mint_controls_render_in_agaves_shape() -> None:
    """A wallet sees who controls the mint (delegate, closer, hook, frozen default)."""
    delegate, closer, hook_authority, hook = (Keypair().pubkey() for _ in range(4))
    base = MintState(None, 1, 0, True, None)
    data = token2022.encode_mint(
        token2022.Mint2022(
            base,
            (
                token2022.MintCloseAuthority(closer),
                token2022.PermanentDelegate(delegate),
                token2022.TransferHook(hook_authority, hook),
                token2022.NonTransferable(),
                token2022.DefaultAccountState(AccountState.FROZEN),
            ),
        )
    )
    assert token_extensions(T22, data, mint=True) == [
        {"extension": "mintCloseAuthority", "state": {"closeAuthority": str(closer)}},
        {"extension": "permanentDelegate", "state": {"delegate": str(delegate)}},
        {
            "extension": "transferHook",
            "state": {"authority": str(hook_authority), "programId": str(hook)},
        },
        {"extension": "nonTransferable"},
        {"extension": "defaultAccountState", "state": {"accountState": "frozen"}},
    ]
