"""NFT mint throughput: through the local chain's JSON-RPC vs LiteSVM in-process, in one run.

    .venv/bin/python bench/localnet.py [--count 2000] [--in-flight 4] [--repeat 3]

Both paths build and sign the same Token-2022 NFT mint transaction (8 instructions: mint with
MetadataPointer + TokenMetadata + `level` field, ATA, MintTo 1, mint authority removed) in this
process. In-process sends it to a bare ``LiteSVM``; the RPC path sends it with solana-py's
``AsyncClient.send_raw_transaction`` (preflight on, as production sends) to ``aiw3 localnet``
started as a subprocess on loopback, then checks every signature landed. Prints the median
rate of each and the ratio. Bounded: a fixed number of transactions, and timeouts on every wait.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import re
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Processed
from solders.account import Account
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM

ROOT = Path(__file__).resolve().parent.parent


def _nft_module() -> ModuleType:
    # The minimal NFT builder lives with the local chain's tests; load it by path.
    path = ROOT / "tests" / "chain" / "localnet" / "nft.py"
    spec = importlib.util.spec_from_file_location("localnet_nft", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NFT = _nft_module()


def bench_in_process(count: int) -> float:
    """Build + sign + send ``count`` NFT mints on a bare LiteSVM; transactions per second."""
    svm = LiteSVM()
    payer = Keypair()
    svm.set_account(payer.pubkey(), Account(10**15, b"", SYSTEM_PROGRAM))
    rent = svm.minimum_balance_for_rent_exemption(NFT.mint_rent_size())
    owner = Keypair().pubkey()
    blockhash = svm.latest_blockhash()
    start = time.perf_counter()
    for _ in range(count):
        tx = NFT.mint_nft_tx(payer, Keypair(), owner, rent, blockhash)
        result = svm.send_transaction(tx)
        if not hasattr(result, "compute_units_consumed"):
            raise RuntimeError(f"in-process mint failed: {result}")
    return count / (time.perf_counter() - start)


async def bench_rpc(rpc_url: str, count: int, in_flight: int) -> float:
    """Build + sign + sendTransaction ``count`` NFT mints, ``in_flight`` at a time; tx/s.
    Only counts the run if every signature then shows up as landed without error."""
    async with AsyncClient(rpc_url, timeout=60) as rpc:
        payer = Keypair()
        funded = (await rpc.request_airdrop(payer.pubkey(), 10**14)).value
        await _wait_landed(rpc, [funded])
        rent = (await rpc.get_minimum_balance_for_rent_exemption(NFT.mint_rent_size())).value
        owner = Keypair().pubkey()
        blockhash = (await rpc.get_latest_blockhash(Processed)).value.blockhash
        queue = iter(range(count))
        signatures: list[Signature] = []

        async def worker() -> None:
            for _ in queue:
                tx = NFT.mint_nft_tx(payer, Keypair(), owner, rent, blockhash)
                signatures.append((await rpc.send_raw_transaction(bytes(tx))).value)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
        await _wait_landed(rpc, signatures)
        return count / elapsed


async def _wait_landed(rpc: AsyncClient, signatures: list[Signature]) -> None:
    """Every signature known to the node and successful (processed is enough to count)."""
    pending = list(signatures)
    deadline = time.monotonic() + 60
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} transactions did not land")
        still = []
        for i in range(0, len(pending), 256):
            batch = pending[i : i + 256]
            for signature, status in zip(
                batch, (await rpc.get_signature_statuses(batch)).value, strict=True
            ):
                if status is None:
                    still.append(signature)
                elif status.err is not None:
                    raise RuntimeError(f"{signature} failed: {status.err}")
        pending = still
        if pending:
            await asyncio.sleep(0.05)


async def _start_localnet() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from aiw3.cli import main; main()",
        "localnet",
        "--rpc-port",
        "0",
        "--ws-port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    match = re.search(r"rpc (http://\S+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"unexpected localnet output: {line!r}")
    return proc, match.group(1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="transactions per run")
    parser.add_argument("--in-flight", type=int, default=4, help="concurrent RPC sends")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (median shown)")
    args = parser.parse_args()

    bench_in_process(100)  # warm-up: program cache, imports
    local = [bench_in_process(args.count) for _ in range(args.repeat)]

    proc, rpc_url = await _start_localnet()
    try:
        await bench_rpc(rpc_url, 100, args.in_flight)  # warm-up
        sequential = [await bench_rpc(rpc_url, args.count // 4, 1) for _ in range(args.repeat)]
        pipelined = [
            await bench_rpc(rpc_url, args.count, args.in_flight) for _ in range(args.repeat)
        ]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)

    in_process = statistics.median(local)
    rpc_seq = statistics.median(sequential)
    rpc_pipe = statistics.median(pipelined)
    ratio_pipe = rpc_pipe / in_process
    ratio_seq = rpc_seq / in_process
    print(
        f"NFT mint (Token-2022, 8 instructions), {args.count} tx per run, median of {args.repeat}"
    )
    print(f"  in-process LiteSVM (build + sign + send)      {in_process:8.0f} tx/s")
    print(f"  RPC, {args.in_flight:2d} in flight (build + sign + HTTP send)  {rpc_pipe:8.0f} tx/s")
    print(f"  RPC,  1 in flight                             {rpc_seq:8.0f} tx/s")
    flight = args.in_flight
    print(f"  ratio RPC / in-process  {ratio_pipe:.2f} ({flight} in flight), {ratio_seq:.2f} (1)")


if __name__ == "__main__":
    asyncio.run(main())
