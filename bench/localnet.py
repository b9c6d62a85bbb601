"""NFT mint throughput: through the local chain's JSON-RPC vs LiteSVM in-process, in one run.

    .venv/bin/python bench/localnet.py [--count 2000] [--in-flight 4] [--repeat 3]

Every path builds and signs the same Token-2022 NFT mint transaction in this process, with the
project's own ``token2022`` asset standard (``chain.standards``, what production sends: mint with
MetadataPointer + TokenMetadata + ``level`` field, ATA, MintToChecked 1, mint authority removed).
In-process sends it to a bare ``LiteSVM``. The RPC paths send it, preflight on, to
``aiw3 localnet`` started as a subprocess on loopback: with solana-py's ``AsyncClient`` (what
production uses; its client stack costs more CPU per request than the server does) and with
plain keep-alive HTTP/1.1 (what the server itself sustains). Each RPC run then checks that every
signature landed without error. Prints the median rate of each path and its ratio to
in-process. Then the cost of ``logsSubscribe``: the plain-HTTP mint rate with 0, 1,000 and
10,000 ``mentions`` subscriptions open (each on its own address, as an indexer following many
wallets would hold), and each rate's ratio to the rate with none (the target: >= 0.9 at 10,000).
Bounded: a fixed number of transactions and a timeout on every wait.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import websockets
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.account import Account
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.transaction import Transaction

from chain.standards import MintRequest, get_standard

ROOT = Path(__file__).resolve().parent.parent

# Default (mainnet) rent, which LiteSVM and so the local chain also use: both paths build the
# same transactions without asking the chain (an underfunded mint would fail, and be caught).
STANDARD = get_standard("token2022")
REQUEST = MintRequest(level="1", uri="https://example.invalid/nft.json")
SUBSCRIPTIONS = (0, 1000, 10_000)


def mint_nft_tx(payer: Keypair, owner: Pubkey, blockhash: Hash) -> Transaction:
    """One NFT mint to ``owner``, built and signed as the backend does (fresh mint keypair)."""
    mint = Keypair()
    plan = STANDARD.mint_plan(
        system=payer.pubkey(), owner=owner, mint=mint.pubkey(), request=REQUEST
    )
    return plan.sign([payer, mint], blockhash)


def instruction_count() -> int:
    plan = STANDARD.mint_plan(
        system=Pubkey.default(), owner=Pubkey.default(), mint=Keypair().pubkey(), request=REQUEST
    )
    return len(plan.instructions)


def bench_in_process(count: int) -> float:
    """Build + sign + send ``count`` NFT mints on a bare LiteSVM; transactions per second."""
    svm = LiteSVM()
    payer = Keypair()
    svm.set_account(payer.pubkey(), Account(10**15, b"", SYSTEM_PROGRAM))
    owner = Keypair().pubkey()
    blockhash = svm.latest_blockhash()
    start = time.perf_counter()
    for _ in range(count):
        tx = mint_nft_tx(payer, owner, blockhash)
        result = svm.send_transaction(tx)
        if not hasattr(result, "compute_units_consumed"):
            raise RuntimeError(f"in-process mint failed: {result}")
    return count / (time.perf_counter() - start)


class _RawSender:
    """sendTransaction over plain keep-alive HTTP/1.1 connections: the same requests without
    solana-py's client stack, to show what the server itself sustains."""

    def __init__(self, rpc_url: str, connections: int) -> None:
        parts = urlsplit(rpc_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._connections = connections
        self._pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def __aenter__(self) -> _RawSender:
        for _ in range(self._connections):
            self._pool.put_nowait(await asyncio.open_connection(self._host, self._port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self._pool.empty():
            self._pool.get_nowait()[1].close()

    async def send(self, raw: bytes) -> Signature:
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "sendTransaction",
                "params": [
                    base64.b64encode(raw).decode(),
                    {"encoding": "base64", "preflightCommitment": "confirmed"},
                ],
            }
        ).encode()
        head = (
            f"POST / HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        reader, writer = await self._pool.get()
        try:
            writer.write(head + body)
            headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = int(headers.split("content-length:")[1].split("\r\n")[0])
            reply = json.loads(await reader.readexactly(length))
        finally:
            self._pool.put_nowait((reader, writer))
        if "error" in reply:
            raise RuntimeError(f"sendTransaction failed: {reply['error']['message']}")
        return Signature.from_string(reply["result"])


async def bench_rpc(rpc_url: str, count: int, in_flight: int, *, raw_http: bool = False) -> float:
    """Build + sign + sendTransaction ``count`` NFT mints, ``in_flight`` at a time; tx/s.
    Sent with solana-py's AsyncClient, or with ``raw_http`` over plain HTTP connections.
    Only counts the run if every signature then shows up as landed without error."""
    # One commitment for the blockhash and the preflight, as production code must use.
    async with (
        AsyncClient(rpc_url, commitment=Confirmed, timeout=60) as rpc,
        _RawSender(rpc_url, in_flight if raw_http else 0) as raw_sender,
    ):
        payer = Keypair()
        funded = (await rpc.request_airdrop(payer.pubkey(), 10**14)).value
        await _wait_landed(rpc, [funded])
        owner = Keypair().pubkey()
        blockhash = (await rpc.get_latest_blockhash()).value.blockhash
        queue = iter(range(count))
        signatures: list[Signature] = []

        async def worker() -> None:
            nonlocal blockhash
            for i in queue:
                if i and i % 1000 == 0:  # stay well inside the 150-block validity window
                    blockhash = (await rpc.get_latest_blockhash()).value.blockhash
                tx = bytes(mint_nft_tx(payer, owner, blockhash))
                if raw_http:
                    signatures.append(await raw_sender.send(tx))
                else:
                    signatures.append((await rpc.send_raw_transaction(tx)).value)

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


async def bench_with_subscriptions(
    rpc_url: str, ws_url: str, subscriptions: int, count: int, in_flight: int
) -> float:
    """The plain-HTTP mint rate while ``subscriptions`` logs ``mentions`` subscriptions, each
    on a different address that no mint names, are open (so none is notified: the cost
    measured is matching, not sending)."""
    async with websockets.connect(ws_url, max_size=None) as ws:
        for i in range(subscriptions):
            mention = {"mentions": [str(Keypair().pubkey())]}
            request = {"jsonrpc": "2.0", "id": i, "method": "logsSubscribe", "params": [mention]}
            await ws.send(json.dumps(request))
        for _ in range(subscriptions):
            reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if "result" not in reply:
                raise RuntimeError(f"logsSubscribe failed: {reply}")
        return await bench_rpc(rpc_url, count, in_flight, raw_http=True)


async def _start_localnet() -> tuple[asyncio.subprocess.Process, str, str]:
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
    ws = re.search(r"(ws://\S+)", line)
    if ws is None:
        proc.kill()
        raise RuntimeError(f"unexpected localnet output: {line!r}")
    return proc, match.group(1), ws.group(1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="transactions per run")
    parser.add_argument("--in-flight", type=int, default=4, help="concurrent RPC sends")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (median shown)")
    args = parser.parse_args()

    bench_in_process(100)  # warm-up: program cache, imports
    local = [bench_in_process(args.count) for _ in range(args.repeat)]

    proc, rpc_url, ws_url = await _start_localnet()
    flight = args.in_flight
    try:
        await bench_rpc(rpc_url, 100, flight)  # warm-up
        rates: dict[str, list[float]] = {"py1": [], "py": [], "raw": []}
        for _ in range(args.repeat):  # interleaved, so machine noise hits every path alike
            rates["py1"].append(await bench_rpc(rpc_url, args.count // 4, 1))
            rates["py"].append(await bench_rpc(rpc_url, args.count, flight))
            rates["raw"].append(await bench_rpc(rpc_url, args.count, flight, raw_http=True))
        subscribed: dict[int, list[float]] = {n: [] for n in SUBSCRIPTIONS}
        for _ in range(args.repeat):
            for n in SUBSCRIPTIONS:
                subscribed[n].append(
                    await bench_with_subscriptions(rpc_url, ws_url, n, args.count, flight)
                )
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)

    in_process = statistics.median(local)
    median = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"NFT mint (token2022 standard, {instruction_count()} instructions), "
        f"{args.count} tx/run, median of {args.repeat}"
    )
    print(f"  in-process LiteSVM (build + sign + send)             {in_process:6.0f} tx/s")
    rows = [
        ("py", f"RPC via solana-py AsyncClient, {flight} in flight"),
        ("py1", "RPC via solana-py AsyncClient, 1 in flight"),
        ("raw", f"RPC via plain HTTP/1.1, {flight} in flight"),
    ]
    for key, label in rows:
        rate = median[key]
        print(f"  {label:<52} {rate:6.0f} tx/s  ratio {rate / in_process:.2f}")
    base = statistics.median(subscribed[0])
    print(f"logsSubscribe mentions (plain HTTP/1.1, {flight} in flight), ratio to none")
    for n in SUBSCRIPTIONS:
        rate = statistics.median(subscribed[n])
        print(f"  {n:>6} subscriptions {'':<32} {rate:6.0f} tx/s  ratio {rate / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
