"""The local chain as a node (``Localnet``), through the shared harness that every part uses:
the session chain, the project's RPC client on it, and a fresh funded system wallet per test."""

from __future__ import annotations

from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair

from chain.keys import Signer
from chain.localnet import Localnet
from chain.rpc import RpcClient
from tests.harness.localnet import WALLET_LAMPORTS, mint_nft


async def test_harness_urls_point_at_the_running_chain(
    localnet: Localnet, rpc_url: str, ws_url: str
) -> None:
    assert rpc_url == localnet.rpc_url
    assert rpc_url.startswith("http://127.0.0.1:")
    assert ws_url == localnet.ws_url
    assert ws_url.startswith("ws://127.0.0.1:")
    assert localnet.chain.current.slot > 0


async def test_system_wallet_is_new_and_funded(
    system_wallet: Signer, rpc_client: RpcClient
) -> None:
    balance = await rpc_client.get_balance(system_wallet.pubkey)
    assert balance.value == WALLET_LAMPORTS
    # Only its airdrop: no other test's transactions in this creator's history.
    history = await rpc_client.get_signatures_for_address(system_wallet.pubkey)
    assert len(history) == 1


async def test_mint_nft_helper_takes_a_signer(
    system_wallet: Signer, solana_client: AsyncClient, rpc_client: RpcClient
) -> None:
    holder = Keypair().pubkey()
    mint, signature = await mint_nft(solana_client, system_wallet, holder, level=3)
    account = await rpc_client.get_account_info(mint.pubkey())
    assert account.value is not None
    history = await rpc_client.get_signatures_for_address(system_wallet.pubkey)
    assert history[0].signature == signature
