"""``aiw3 asset show`` against the real local chain (HTTP JSON-RPC): a Token-2022 NFT minted
through the wire, and a real mainnet Metaplex NFT loaded into it from the DAS fixtures."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import structlog
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from typer.testing import CliRunner

from aiw3.cli import app
from chain.localnet import Localnet, LocalnetConfig
from chain.standards import CollectionRequest, MintRequest, Plan, get_standard
from tests.das_fixtures import das_case


class _Rpc:
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

    def send(self, plan: Plan, *signers: Keypair) -> None:
        blockhash = Hash.from_string(self.call("getLatestBlockhash", [])["value"]["blockhash"])
        tx = plan.sign(list(signers), blockhash)
        sig = self.call(
            "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}]
        )
        self.wait(sig)


@pytest.fixture(scope="module")
def rpc() -> Iterator[_Rpc]:
    """The local chain served from its own event loop in a thread: the CLI under test runs
    ``asyncio.run`` in this thread, as it does from a shell."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    net = Localnet(LocalnetConfig(slot_ms=20, finality_depth=6), rpc_port=0, ws_port=0)
    asyncio.run_coroutine_threadsafe(net.start(), loop).result(timeout=30)
    try:
        yield _Rpc(net.rpc_url)
    finally:
        asyncio.run_coroutine_threadsafe(net.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures logging for the whole process, as a CLI should; undo that so
    later tests in this process see the logging set-up they expect."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and name not in levels:
            logger.setLevel(logging.NOTSET)
    structlog.configure(**config)


def _invoke(args: list[str]) -> Any:
    # In a thread of its own: the command's asyncio.run would otherwise reset the main
    # thread's event loop, which the session-scoped async fixtures of other tests rely on.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(CliRunner().invoke, app, args).result()


def _show(rpc: _Rpc, mint: str) -> Any:
    return _invoke(["asset", "show", mint, "--rpc", rpc.url])


def test_shows_a_token2022_nft(rpc: _Rpc) -> None:
    std = get_standard("token2022")
    system, coll, mint, owner = Keypair(), Keypair(), Keypair(), Keypair().pubkey()
    rpc.wait(rpc.call("requestAirdrop", [str(system.pubkey()), 10**10]))
    rpc.send(
        std.collection_plan(
            system=system.pubkey(),
            collection_mint=coll.pubkey(),
            request=CollectionRequest(name="AIW3 Equity NFT", uri="https://x.test/c.json"),
        ),
        system,
        coll,
    )
    rpc.send(
        std.mint_plan(
            system=system.pubkey(),
            owner=owner,
            mint=mint.pubkey(),
            request=MintRequest("4", "https://x.test/4.json", "Alpha Alchemist"),
            collection=coll.pubkey(),
        ),
        system,
        mint,
    )
    result = _invoke(
        ["asset", "show", str(mint.pubkey()), "--rpc", rpc.url, "--collection", str(coll.pubkey())]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["genuine"], shown["reasons"]) == (True, [])
    assert str(coll.pubkey()) in shown["proof"]
    assert "genuine:" in result.stderr
    assert isinstance(shown["slot"], int)
    assert shown["slot"] > 0
    assert shown["standard"] == "token2022"
    assert shown["owner"] == str(owner)
    assert shown["level"] == "4"
    assert shown["name"] == "AIW3 Equity NFT · Alpha Alchemist"
    assert shown["collection"] == {"address": str(coll.pubkey()), "verified": True}
    # The update authority is reported, never verified: it proves nothing.
    assert shown["creators"] == [{"address": str(system.pubkey()), "share": 100, "verified": False}]
    assert shown["burnt"] is False
    assert shown["mint_authority"] is None


def test_shows_a_mainnet_metaplex_nft(rpc: _Rpc) -> None:
    case = das_case("reg_get_asset")
    for acc in case["steps"][0]["accounts"]:
        rpc.call(
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
    expected = case["requests"][0]["expected"]
    result = _show(rpc, expected["id"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["standard"] == "metaplex"
    assert shown["name"] == expected["content"]["metadata"]["name"]
    assert shown["uri"] == expected["content"]["json_uri"]
    assert shown["owner"] == expected["ownership"]["owner"]
    assert shown["frozen"] == expected["ownership"]["frozen"]
    assert shown["delegate"] == expected["ownership"]["delegate"]
    assert shown["creators"] == expected["creators"]
    assert shown["collection"]["address"] == expected["grouping"][0]["group_value"]


def test_unknown_mint_and_bad_input(rpc: _Rpc) -> None:
    missing = _show(rpc, str(Pubkey.new_unique()))
    assert missing.exit_code == 1
    assert "not_found" in missing.stderr
    bad = _show(rpc, "not-a-key")
    assert bad.exit_code == 2
    assert "invalid_public_key" in bad.stderr
    bad_url = _invoke(["asset", "show", str(Pubkey.new_unique()), "--rpc", "ftp://x"])
    assert bad_url.exit_code == 2
