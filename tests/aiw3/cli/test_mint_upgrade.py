"""``aiw3 mint activate | activation-check | upgrade | upgrade-submit`` as the API will call
them, in separate processes against the local chain, with a generated user keypair signing
as the wallet would."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solders.compute_budget import ID as COMPUTE_BUDGET
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from chain.asset import fetch_asset
from chain.localnet import Localnet, LocalnetConfig
from chain.rpc import RpcClient
from store import migrate
from store.engine import create_engine, session_factory
from tests.aiw3.cli.test_mint import _aiw3, cli_env
from tests.harness.localnet import FINALITY_DEPTH, SLOT_MS, airdrop, wait_status
from tests.minting.conftest import make_user


@pytest_asyncio.fixture
async def slow_expiry() -> AsyncIterator[tuple[Localnet, AsyncClient]]:
    """A chain of its own whose blockhashes stay valid for a minute (3,000 blocks of 20 ms):
    between the commands' process starts on a busy machine, 150 blocks are only 3 s."""
    net = Localnet(
        LocalnetConfig(slot_ms=SLOT_MS, finality_depth=FINALITY_DEPTH, blockhash_window=3000),
        rpc_port=0,
        ws_port=0,
    )
    await net.start()
    try:
        async with AsyncClient(net.rpc_url) as client:
            yield net, client
    finally:
        await net.stop()


async def test_activate_and_upgrade_through_the_cli(
    tmp_path: Path, slow_expiry: tuple[Localnet, AsyncClient]
) -> None:
    localnet, solana_client = slow_expiry
    url = f"sqlite+aiosqlite:///{tmp_path}/aiw3.db"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    wallet = Keypair()
    async with session_factory(engine)() as session:
        user = await make_user(session, "600000", 2, wallet=str(wallet.pubkey()))
    await engine.dispose()
    _, env = await cli_env(tmp_path, localnet, url, os.urandom(32).hex())
    await airdrop(solana_client, wallet.pubkey(), 10**9)  # the owner pays the activation
    code, out, err = await _aiw3(env, "mint", "claim", "--wallet", user.wallet_address)
    assert code == 0, err
    mint = json.loads(out)["mint"]
    code, out, err = await _aiw3(env, "mint", "worker", "--once")
    assert code == 0, err

    # Activation: the owner signs and sends what `activate` prints, the client posts it back.
    code, out, err = await _aiw3(env, "mint", "activate", "--mint", mint)
    assert code == 0, err
    ticket = json.loads(out)
    assert (ticket["mint"], ticket["owner"]) == (mint, user.wallet_address)
    tx = Transaction.from_bytes(base64.b64decode(ticket["transaction"]))
    tx.sign([wallet], tx.message.recent_blockhash)
    signature = (await solana_client.send_raw_transaction(bytes(tx))).value
    await wait_status(solana_client, signature, "confirmed")
    code, out, err = await _aiw3(env, "mint", "activation-check", str(signature))
    assert code == 0, err
    assert json.loads(out) == {"mint": mint, "status": "active", "moved": True}
    code, out, err = await _aiw3(env, "mint", "activation-check", str(signature))
    assert json.loads(out)["moved"] is False

    # Upgrade: the backend signs, the owner adds their signature, `upgrade-submit` sends it.
    code, out, err = await _aiw3(env, "mint", "upgrade", "--wallet", user.wallet_address)
    assert code == 0, err
    upgrade = json.loads(out)
    assert (upgrade["from_mint"], upgrade["from_level"], upgrade["to_level"]) == (mint, 1, 2)
    assert upgrade["created"] is True
    tx = Transaction.from_bytes(base64.b64decode(upgrade["transaction"]))
    programs = [tx.message.account_keys[ix.program_id_index] for ix in tx.message.instructions]
    assert programs[:2] == [COMPUTE_BUDGET, COMPUTE_BUDGET]  # the priority fee settings
    tx.partial_sign([wallet], tx.message.recent_blockhash)
    assert len(bytes(tx)) <= 1232
    signed = base64.b64encode(bytes(tx)).decode()
    code, out, err = await _aiw3(env, "mint", "upgrade-submit", signed)
    assert code == 0, err
    submitted = json.loads(out)
    assert submitted["request_id"] == upgrade["request_id"]
    assert submitted["status"] in ("submitted", "confirmed")
    await wait_status(solana_client, Signature.from_string(upgrade["signature"]), "confirmed")
    # Nobody asks about it any more: `worker --once` settles the open upgrades.
    code, out, err = await _aiw3(env, "mint", "worker", "--once")
    assert code == 0, err
    code, out, err = await _aiw3(env, "mint", "status", "--operation", str(upgrade["operation_id"]))
    assert code == 0, err
    assert json.loads(out)["state"] == "confirmed"
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        new = (await fetch_asset(rpc, Pubkey.from_string(upgrade["to_mint"]))).value
        old = (await fetch_asset(rpc, Pubkey.from_string(mint))).value
    assert (new.owner, new.level, old.burnt) == (user.wallet_address, "2", True)
    assert new.collection is not None  # it joined the deployment's collection

    # Errors: one line with the code, non-zero exit.
    for args, wanted in (
        (("upgrade-submit", "not base64!"), "invalid_input"),
        (("upgrade-submit", signed), "UPGRADE_CLOSED"),
        (("upgrade", "--wallet", user.wallet_address), "QUALIFICATION_NOT_MET"),
        (("activation-check", str(Signature.new_unique())), "ACTIVATION_NOT_FOUND"),
        (("activate", "--mint", mint), "NFT_NOT_FOUND"),  # burnt by the upgrade
        (("activate", "--mint", "nope"), "invalid_public_key"),
    ):
        code, out, err = await _aiw3(env, "mint", *args)
        assert code == 1, (args, out, err)
        assert out == ""
        assert f"[{wanted}]" in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
