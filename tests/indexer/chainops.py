"""What the indexer tests do on the local chain: a deployment (system wallet + collection),
NFT mints, transfers of every kind, burns, closes, delegates and activations (genuine and
forged), each sent over the RPC and waited for at ``confirmed``."""

from __future__ import annotations

from dataclasses import dataclass

from solana.rpc.async_api import AsyncClient
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction

from chain.codecs import ata, memo, spl_token
from chain.programs import MEMO_V1_PROGRAM, TOKEN_2022_PROGRAM
from chain.standards import CollectionRequest, MintRequest, get_standard
from tests.harness.localnet import blockhash, wait_status

T22 = TOKEN_2022_PROGRAM
_STANDARD = get_standard("token2022")
_AMOUNT_TO_UI_AMOUNT = 23


@dataclass
class Deployment:
    system: Keypair
    collection: Pubkey


async def _send(client: AsyncClient, signers: list[Keypair], ixs: list[Instruction]) -> Signature:
    tx = Transaction(signers, Message(ixs, signers[0].pubkey()), await blockhash(client))
    signature = (await client.send_raw_transaction(bytes(tx))).value
    await wait_status(client, signature, "confirmed")
    return signature


async def fund(client: AsyncClient, lamports: int = 10 * 10**9) -> Keypair:
    wallet = Keypair()
    signature = (await client.request_airdrop(wallet.pubkey(), lamports)).value
    await wait_status(client, signature, "confirmed")
    return wallet


async def deploy(client: AsyncClient) -> Deployment:
    system = await fund(client, 100 * 10**9)
    collection = Keypair()
    plan = _STANDARD.collection_plan(
        system=system.pubkey(),
        collection_mint=collection.pubkey(),
        request=CollectionRequest("AIW3", "https://example.invalid/c.json"),
    )
    await _send(client, [system, collection], list(plan.instructions))
    return Deployment(system, collection.pubkey())


async def mint(
    client: AsyncClient,
    system: Keypair,
    owner: Pubkey,
    *,
    collection: Pubkey | None,
    level: str = "1",
    uri: str = "https://example.invalid/n.json",
    title: str | None = None,
) -> tuple[Pubkey, Signature]:
    key = Keypair()
    plan = _STANDARD.mint_plan(
        system=system.pubkey(),
        owner=owner,
        mint=key.pubkey(),
        request=MintRequest(level, uri, title),
        collection=collection,
    )
    return key.pubkey(), await _send(client, [system, key], list(plan.instructions))


def ata_of(owner: Pubkey, mint_key: Pubkey) -> Pubkey:
    return ata.address(owner, mint_key, T22)


async def transfer_checked(
    client: AsyncClient,
    owner: Keypair,
    mint_key: Pubkey,
    to: Pubkey,
    *,
    source: Pubkey | None = None,
) -> Signature:
    """``TransferChecked`` to ``to``'s ATA (created on the way) from ``source`` (default: the
    owner's ATA)."""
    dest = ata_of(to, mint_key)
    src = source if source is not None else ata_of(owner.pubkey(), mint_key)
    return await _send(
        client,
        [owner],
        [
            ata.create(owner.pubkey(), to, mint_key, T22),
            spl_token.encode(
                spl_token.TransferChecked(T22, src, mint_key, dest, owner.pubkey(), 1, 0)
            ),
        ],
    )


async def create_ata(client: AsyncClient, payer: Keypair, owner: Pubkey, mint_key: Pubkey) -> None:
    await _send(client, [payer], [ata.create(payer.pubkey(), owner, mint_key, T22)])


async def transfer_plain(
    client: AsyncClient, owner: Keypair, source: Pubkey, dest: Pubkey
) -> Signature:
    """A plain ``Transfer`` between two existing accounts: it names neither mint nor receiver."""
    ix = spl_token.encode(spl_token.Transfer(T22, source, dest, owner.pubkey(), 1))
    return await _send(client, [owner], [ix])


async def fresh_account(
    client: AsyncClient, payer: Keypair, owner: Pubkey, mint_key: Pubkey
) -> Pubkey:
    """A token account that is not an ATA (InitializeAccount3)."""
    account = Keypair()
    rent = (await client.get_minimum_balance_for_rent_exemption(170)).value
    init3 = Instruction(
        T22,
        bytes([18]) + bytes(owner),
        [AccountMeta(account.pubkey(), False, True), AccountMeta(mint_key, False, False)],
    )
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=account.pubkey(),
                lamports=rent,
                space=165,
                owner=T22,
            )
        ),
        init3,
    ]
    await _send(client, [payer, account], ixs)
    return account.pubkey()


async def burn(
    client: AsyncClient, owner: Keypair, mint_key: Pubkey, account: Pubkey | None = None
) -> Signature:
    plan = _STANDARD.burn_plan(owner=owner.pubkey(), mint=mint_key, token_account=account)
    return await _send(client, [owner], list(plan.instructions))


async def upgrade(
    client: AsyncClient,
    system: Keypair,
    owner: Keypair,
    old_mint: Pubkey,
    *,
    collection: Pubkey,
    level: str,
    old_account: Pubkey | None = None,
) -> tuple[Pubkey, Signature]:
    """One transaction: ``owner`` burns ``old_mint`` (closing its account), the system mints
    the next NFT to ``owner``."""
    key = Keypair()
    plan = _STANDARD.upgrade_plan(
        system=system.pubkey(),
        owner=owner.pubkey(),
        old_mint=old_mint,
        new_mint=key.pubkey(),
        request=MintRequest(level, "https://example.invalid/u.json", None),
        collection=collection,
        old_collection=collection,
        old_token_account=old_account,
    )
    return key.pubkey(), await _send(client, [system, owner, key], list(plan.instructions))


async def close(client: AsyncClient, owner: Keypair, account: Pubkey) -> Signature:
    """A lone ``CloseAccount`` of an emptied account: it does not name the mint."""
    ix = spl_token.encode(spl_token.CloseAccount(T22, account, owner.pubkey(), owner.pubkey()))
    return await _send(client, [owner], [ix])


async def approve(
    client: AsyncClient, owner: Keypair, account: Pubkey, delegate: Pubkey | None
) -> Signature:
    if delegate is None:
        data, metas = bytes([5]), [AccountMeta(account, False, True)]
    else:
        data = bytes([4]) + (1).to_bytes(8, "little")
        metas = [AccountMeta(account, False, True), AccountMeta(delegate, False, False)]
    metas.append(AccountMeta(owner.pubkey(), True, False))
    return await _send(client, [owner], [Instruction(T22, data, metas)])


def mint_reference(mint_key: Pubkey) -> Instruction:
    # AmountToUiAmount only reads the mint: it puts the mint in the keys (and its history).
    return Instruction(
        T22,
        bytes([_AMOUNT_TO_UI_AMOUNT]) + (1).to_bytes(8, "little"),
        [AccountMeta(mint_key, False, False)],
    )


async def activate(client: AsyncClient, signer: Keypair, mint_key: Pubkey) -> Signature:
    """The activation memo (Memo v2), signed by ``signer``, with a reference to the mint."""
    return await _send(
        client, [signer], [memo.activation(signer.pubkey(), mint_key), mint_reference(mint_key)]
    )


async def forged_activation(
    client: AsyncClient, forger: Keypair, victim: Pubkey, mint_key: Pubkey
) -> Signature:
    """A Memo v1 naming ``victim`` as its account: v1 checks no signature, so it executes."""
    text = f"{memo.ACTIVATE_PREFIX}{mint_key}".encode()
    ix = Instruction(MEMO_V1_PROGRAM, text, [AccountMeta(victim, False, False)])
    return await _send(client, [forger], [ix, mint_reference(mint_key)])
