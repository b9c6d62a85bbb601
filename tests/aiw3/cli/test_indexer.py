"""``aiw3 indexer add | backfill | run`` as the operator runs them: separate processes against the
local chain and a SQLite file. ``add`` imports a real mainnet Metaplex NFT (Mad Lads #9964 from
the DAS fixtures, loaded with ``localnet_setAccount``), genuine only once its verified creator is
trusted; a running indexer follows a mint added behind its back; ``backfill`` picks up a
changed collection set."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair

from chain.keys import Signer, write_keypair_file
from chain.localnet import Localnet
from chain.rpc import RpcClient
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig
from store import migrate
from store.engine import create_engine, session_factory
from store.leases import LocalLeases
from store.tables import AssetRow
from tests.aiw3.cli.test_mint import _aiw3
from tests.das_fixtures import das_case
from tests.harness.localnet import raw_rpc
from tests.indexer import chainops as ops

_PATIENCE = 400  # polls of 50 ms: a guard against a hang, not a timing assertion
_MAD_LADS = "CMVuYDS9nTeujfTPJb8ik7CRhAqZv4DfjfdamFLkJgxE"


async def _env(tmp_path: Path, localnet: Localnet, system: Signer) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path}/aiw3.db"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    keypair_file = tmp_path / "system.json"
    write_keypair_file(keypair_file, system)
    return {
        "HOME": str(tmp_path),
        "AIW3_DATABASE_URL": url,
        "AIW3_RPC_URL": localnet.rpc_url,
        "AIW3_WS_URL": localnet.ws_url,
        "AIW3_SYSTEM_KEYPAIR": str(keypair_file),
        "AIW3_LOG_FORMAT": "json",
    }


async def _load_mad_lads(localnet: Localnet) -> None:
    for acc in das_case("reg_get_asset")["steps"][0]["accounts"]:
        reply = await raw_rpc(
            localnet.rpc_url,
            "localnet_setAccount",
            [
                acc["pubkey"],
                {
                    "lamports": acc["lamports"],
                    "owner": acc["owner"],
                    "data": [acc["data_base64"], "base64"],
                },
            ],
        )
        assert "error" not in reply, reply


async def _row(url: str, mint: str) -> AssetRow | None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return await s.get(AssetRow, mint)
    finally:
        await engine.dispose()


async def test_add_imports_a_mainnet_nft_genuine_by_the_rules(
    tmp_path: Path, localnet: Localnet
) -> None:
    await _load_mad_lads(localnet)
    env = await _env(tmp_path, localnet, Signer(Keypair()))
    expected = das_case("reg_get_asset")["requests"][0]["expected"]

    code, out, err = await _aiw3(env, "indexer", "add", _MAD_LADS)
    assert code == 0, err
    [shown] = json.loads(out)
    assert shown["standard"] == "metaplex"
    assert shown["owner"] == expected["ownership"]["owner"]
    assert shown["name"] == "Mad Lads #9964"
    assert shown["genuine"] is False  # its creators are not ours
    row = await _row(env["AIW3_DATABASE_URL"], _MAD_LADS)
    assert row is not None
    assert row.genuine is False
    assert row.level is None

    # Trust its verified creator: the same import now proves it genuine.
    creator = expected["creators"][1]["address"]
    code, out, err = await _aiw3({**env, "AIW3_CREATORS": creator}, "indexer", "add", _MAD_LADS)
    assert code == 0, err
    assert json.loads(out)[0]["genuine"] is True

    # A mint that is not an address stops before anything is read.
    code, out, err = await _aiw3(env, "indexer", "add", "not-a-key")
    assert code == 2
    assert "mint" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_backfill_picks_up_a_changed_collection_set(
    tmp_path: Path, localnet: Localnet, solana_client: AsyncClient
) -> None:
    deployment = await ops.deploy(solana_client)
    env = await _env(tmp_path, localnet, Signer(deployment.system))
    alice = await ops.fund(solana_client)
    mint, _ = await ops.mint(
        solana_client, deployment.system, alice.pubkey(), collection=deployment.collection
    )
    # Nobody told this deployment its collection: the NFT is indexed, not genuine.
    code, out, err = await _aiw3(env, "indexer", "backfill")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["transactions"] >= 1
    assert "addresses" in out  # the progress bar
    row = await _row(env["AIW3_DATABASE_URL"], str(mint))
    assert row is not None
    assert row.owner == str(alice.pubkey())
    assert row.genuine is False

    code, out, err = await _aiw3(
        {**env, "AIW3_COLLECTIONS": str(deployment.collection)}, "indexer", "backfill"
    )
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["rejudged"] == 1
    row = await _row(env["AIW3_DATABASE_URL"], str(mint))
    assert row is not None
    assert row.genuine is True
    assert row.level == 1


async def test_a_running_indexer_follows_an_added_mint(
    tmp_path: Path, localnet: Localnet, solana_client: AsyncClient
) -> None:
    ours = await ops.deploy(solana_client)
    theirs = await ops.deploy(solana_client)  # a creator the indexer does not follow
    env = await _env(tmp_path, localnet, Signer(ours.system))
    alice, bob = await ops.fund(solana_client), Keypair().pubkey()
    mint, _ = await ops.mint(
        solana_client, theirs.system, alice.pubkey(), collection=theirs.collection
    )
    engine = create_engine(env["AIW3_DATABASE_URL"])
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        indexer = Indexer(
            rpc,
            session_factory(engine),
            Projection(Trust(frozenset({str(ours.collection)}), frozenset())),
            IndexerConfig(creators=(str(ours.system.pubkey()),), ws_url=localnet.ws_url),
            IndexerMetrics(CollectorRegistry()),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(indexer.run(LocalLeases(), stop))
        try:
            for _ in range(_PATIENCE):
                if indexer.ready:
                    break
                await asyncio.sleep(0.05)
            code, out, err = await _aiw3(env, "indexer", "add", str(mint))
            assert code == 0, err
            assert json.loads(out)[0]["genuine"] is False  # not our collection
            await ops.transfer_checked(solana_client, alice, mint, bob)
            for _ in range(_PATIENCE):
                row = await _row(env["AIW3_DATABASE_URL"], str(mint))
                if row is not None and row.owner == str(bob):
                    break
                await asyncio.sleep(0.05)
            row = await _row(env["AIW3_DATABASE_URL"], str(mint))
            assert row is not None
            assert row.owner == str(bob)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await engine.dispose()


async def test_run_serves_health_on_the_configured_port(
    tmp_path: Path, localnet: Localnet, solana_client: AsyncClient
) -> None:
    env = await _env(tmp_path, localnet, Signer(Keypair()))
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiw3",
        "indexer",
        "run",
        env={**os.environ, **env, "AIW3_INDEXER_PORT": str(port)},
        cwd=env["HOME"],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(_PATIENCE):
                try:
                    ready = await http.get("/readyz")
                except httpx.TransportError:
                    ready = None
                if ready is not None and ready.status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert ready is not None
            assert ready.status_code == 200
            assert (await http.get("/livez")).status_code == 200
            metrics = await http.get("/metrics")
            assert "indexer_last_processed_slot" in metrics.text
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
