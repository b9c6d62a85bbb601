"""``aiw3 up`` as a user runs it: migrates, serves the local chain, runs every part with demo
data (claims minted by the worker, indexed by the listener, published by the relay), prints
where each listens and stops cleanly on Ctrl-C; a second run sets the earlier chain's
database aside."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from store import migrate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    rpc_port, ws_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "AIW3_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/up.db",
        "AIW3_RPC_URL": f"http://127.0.0.1:{rpc_port}",
        "AIW3_WS_URL": f"ws://127.0.0.1:{ws_port}",
        "AIW3_WORKER_PORT": "0",
        "AIW3_INDEXER_PORT": "0",
        "AIW3_LOG_LEVEL": "WARNING",
        "AIW3_LOG_FORMAT": "json",
    }
    for name in ("AIW3_SYSTEM_KEYPAIR", "AIW3_REDIS_URL", "AIW3_MINT_SECRET"):
        env.pop(name, None)  # `make up` works with no configuration
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiw3", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, rpc_port


def _read_until(proc: subprocess.Popen[str], done: re.Pattern[str], seconds: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if done.search("".join(lines)):
            return lines
    raise AssertionError(f"no {done.pattern!r} in: {''.join(lines)}")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped" in out
    return out


def test_up_runs_every_part_with_demo_data(tmp_path: Path) -> None:
    proc, rpc_port = _start(tmp_path)
    try:
        lines = _read_until(proc, re.compile(r"(event +unlocked.*\n.*){2}"), 120)
        text = "".join(lines)
        assert f"schema {migrate.head_revision()}" in text
        assert "carol" in text
        assert "QUALIFICATION_NOT_MET" in text
        reply = httpx.post(
            f"http://127.0.0.1:{rpc_port}",
            json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        ).json()
        assert reply["result"] == "ok"
        worker = re.search(r"worker +metrics (http://\S+)/metrics", text)
        indexer = re.search(r"indexer +metrics (http://\S+)/metrics", text)
        assert worker, text
        assert indexer, text
        metrics = httpx.get(f"{worker[1]}/metrics").text
        assert "nft_claims_total" in metrics
        assert "nft_events_published_total" in metrics
        assert httpx.get(f"{worker[1]}/livez").status_code == 200
        assert "indexer" in httpx.get(f"{indexer[1]}/metrics").text
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with sqlite3.connect(tmp_path / "up.db") as db:
        nfts = db.execute("SELECT status, mint_address FROM user_nfts ORDER BY id").fetchall()
        assets = dict(db.execute("SELECT mint, genuine FROM assets").fetchall())
    assert [status for status, _ in nfts] == ["unlocked", "unlocked"]
    assert all(assets.get(mint) == 1 for _, mint in nfts), (nfts, assets)
    assert (tmp_path / ".aiw3" / "system-keypair.json").stat().st_mode & 0o077 == 0

    # The local chain starts empty again: the first run's database is set aside, not reused.
    proc, _ = _start(tmp_path)
    try:
        lines = _read_until(proc, re.compile(r"running"), 120)
        assert any("earlier chain's state moved to" in line for line in lines), lines
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp_path.glob("up.db.*.old"))
