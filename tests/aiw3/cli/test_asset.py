"""``aiw3 asset show`` against the real local chain (HTTP JSON-RPC): a Token-2022 NFT minted
through the wire, a real mainnet Metaplex NFT loaded into it from the DAS fixtures, and every
hostile case of ``tests/chain/test_asset_hostile.py`` judged with the trusted collections taken
from ``--collection`` or from the settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import structlog
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from typer.testing import CliRunner

from aiw3.cli import app
from chain.standards import CollectionRequest, MintRequest, get_standard
from tests.chain.test_asset_hostile import CASES, Case, LocalChain, World, cases, chain, world
from tests.das_fixtures import das_case

# The session's local chain and hostile cases, shared with the library's tests.
__all__ = ["cases", "chain", "world"]


@pytest.fixture(scope="module")
def rpc(chain: LocalChain) -> LocalChain:
    return chain


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


def _invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    # In a thread of its own: the command's asyncio.run would otherwise reset the main
    # thread's event loop, which the session-scoped async fixtures of other tests rely on.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(CliRunner().invoke, app, args, env=env).result()


def _show(rpc: LocalChain, mint: str) -> Any:
    return _invoke(["asset", "show", mint, "--rpc", rpc.url])


def test_shows_a_token2022_nft(rpc: LocalChain) -> None:
    std = get_standard("token2022")
    system, coll, mint, owner = Keypair(), Keypair(), Keypair(), Keypair().pubkey()
    rpc.wait(rpc.call("requestAirdrop", [str(system.pubkey()), 10**10]))
    rpc.send(
        std.collection_plan(
            system=system.pubkey(),
            collection_mint=coll.pubkey(),
            request=CollectionRequest(name="AIW3 Equity NFT", uri="https://x.test/c.json"),
        ).instructions,
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
        ).instructions,
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


def test_shows_a_mainnet_metaplex_nft(rpc: LocalChain) -> None:
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


def test_unknown_mint_and_bad_input(rpc: LocalChain) -> None:
    missing = _show(rpc, str(Pubkey.new_unique()))
    assert missing.exit_code == 1
    assert "not_found" in missing.stderr
    bad = _show(rpc, "not-a-key")
    assert bad.exit_code == 2
    assert "invalid_public_key" in bad.stderr
    bad_url = _invoke(["asset", "show", str(Pubkey.new_unique()), "--rpc", "ftp://x"])
    assert bad_url.exit_code == 2


@pytest.mark.parametrize("name", list(CASES))
def test_judges_each_hostile_case(rpc: LocalChain, cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    args = ["asset", "show", str(case.mint), "--rpc", rpc.url]
    for collection in case.collections:
        args += ["--collection", collection]
    result = _invoke(args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["genuine"] is (not case.codes)
    assert {r.split(":", 1)[0] for r in shown["reasons"]} == case.codes
    if case.codes:
        assert "unverified:" in result.stderr
        assert all(reason in result.stderr for reason in shown["reasons"])
    else:
        assert "genuine:" in result.stderr


def test_trust_comes_from_the_settings(
    rpc: LocalChain, world: World, cases: dict[str, Case]
) -> None:
    counterfeit = cases["counterfeit"]
    env = {"AIW3_COLLECTIONS": str(world.collection), "AIW3_CREATORS": ""}
    for mint, genuine in ((world.genuine, True), (counterfeit.mint, False)):
        shown = json.loads(_invoke(["asset", "show", str(mint), "--rpc", rpc.url], env).stdout)
        assert shown["genuine"] is genuine
    # Trusting nothing, or only our key as a creator, proves nothing for Token-2022.
    for extra in ({"AIW3_COLLECTIONS": ""}, {"AIW3_CREATORS": str(world.system.pubkey())}):
        shown = json.loads(
            _invoke(
                ["asset", "show", str(world.genuine), "--rpc", rpc.url], {**env, **extra}
            ).stdout
        )
        assert shown["genuine"] is (extra.get("AIW3_COLLECTIONS") != "")


def test_bad_trusted_key_is_a_usage_error(rpc: LocalChain, world: World) -> None:
    result = _invoke(["asset", "show", str(world.genuine), "--rpc", rpc.url, "--collection", "x"])
    assert result.exit_code == 2
    assert "invalid_public_key" in result.stderr
