"""``aiw3 mint claim | worker --once | status | retry | cancel`` and ``aiw3 collection ensure``,
run as the operator runs them: separate processes against the local chain."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from solders.compute_budget import ID as COMPUTE_BUDGET
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.keypair import Keypair
from solders.transaction import Transaction

from chain.keys import Signer, write_keypair_file
from chain.localnet import Localnet
from chain.rpc import RpcClient
from minting.collection import collection_address
from minting.keys import MintKeys
from store import migrate
from store.engine import create_engine, session_factory
from store.tables import MintOperation
from tests.minting.conftest import make_user


async def _aiw3(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiw3",
        *args,
        env={**os.environ, **env},
        cwd=env["HOME"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_env(
    tmp_path: Path, localnet: Localnet, url: str, secret: str
) -> tuple[Signer, dict[str, str]]:
    """A funded system keypair in a file and the environment of an operator's commands
    (priority fees set: limit 200,000 CU, price 1,000 micro-lamports)."""
    system = Signer(Keypair())
    keypair_file = tmp_path / "system.json"
    write_keypair_file(keypair_file, system)
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        await rpc.request_airdrop(system.pubkey, 10 * 10**9)
    return system, {
        "HOME": str(tmp_path),
        "AIW3_DATABASE_URL": url,
        "AIW3_RPC_URL": localnet.rpc_url,
        "AIW3_WS_URL": localnet.ws_url,
        "AIW3_SYSTEM_KEYPAIR": str(keypair_file),
        "AIW3_MINT_SECRET": secret,
        "AIW3_MINT_SECRET_VERSION": "3",
        "AIW3_LOG_FORMAT": "json",
        "AIW3_WORKER_PORT": "0",
        "AIW3_CU_LIMIT": "200000",
        "AIW3_CU_PRICE_MICROLAMPORTS": "1000",
    }


async def test_claim_worker_status(tmp_path: Path, localnet: Localnet) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/aiw3.db"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    async with session_factory(engine)() as session:
        user = await make_user(session, "100000")
    await engine.dispose()
    secret = os.urandom(32).hex()
    system, env = await cli_env(tmp_path, localnet, url, secret)

    code, out, err = await _aiw3(env, "mint", "claim", "--wallet", user.wallet_address)
    assert code == 0, err
    claimed = json.loads(out)
    assert claimed["created"] is True
    assert claimed["state"] == "created"
    assert claimed["owner"] == user.wallet_address
    assert secret not in out + err

    code, out, err = await _aiw3(env, "mint", "claim", "--wallet", str(Keypair().pubkey()))
    assert code == 1
    assert "USER_NOT_FOUND" in err

    code, out, err = await _aiw3(env, "mint", "worker", "--once")
    assert code == 0, err
    code, out, err = await _aiw3(env, "mint", "status", "--operation", str(claimed["id"]))
    assert code == 0, err
    assert json.loads(out)["state"] == "confirmed"
    code, out, err = await _aiw3(env, "mint", "status")
    assert json.loads(out) == {"operations": {"confirmed": 1}}

    code, out, err = await _aiw3(env, "mint", "retry", str(claimed["id"]))
    assert code == 1
    assert "OPERATION_STATE_CONFLICT" in err
    code, out, err = await _aiw3(env, "mint", "cancel", str(claimed["id"]))
    assert code == 1
    assert "OPERATION_STATE_CONFLICT" in err

    # Priority fees: the two ComputeBudget instructions come first in what was sent.
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        op = await session.get(MintOperation, claimed["id"])
    await engine.dispose()
    assert op is not None
    assert op.signed_tx is not None
    tx = Transaction.from_bytes(op.signed_tx)
    budget = [
        (tx.message.account_keys[ix.program_id_index], bytes(ix.data))
        for ix in tx.message.instructions[:2]
    ]
    assert budget == [
        (COMPUTE_BUDGET, bytes(set_compute_unit_limit(200_000).data)),
        (COMPUTE_BUDGET, bytes(set_compute_unit_price(1_000).data)),
    ]

    code, out, err = await _aiw3({**env, "AIW3_FAILPOINT": "nowhere"}, "mint", "worker")
    assert code == 1
    assert "AIW3_FAILPOINT" in err

    code, out, err = await _aiw3(env, "collection", "ensure")
    assert code == 0, err
    keys = MintKeys({3: secret.encode()}, 3)
    assert out.strip() == str(collection_address(keys, "token2022", system.pubkey))
