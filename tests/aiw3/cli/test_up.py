"""``aiw3 up`` as a user runs it: migrates, serves the local chain, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
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


def test_up_runs_until_interrupted(tmp_path: Path) -> None:
    rpc_port, ws_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "AIW3_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/up.db",
        "AIW3_RPC_URL": f"http://127.0.0.1:{rpc_port}",
        "AIW3_WS_URL": f"ws://127.0.0.1:{ws_port}",
        "AIW3_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiw3", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "running" in line or not line:
                break
        assert any(f"schema {migrate.head_revision()}" in line for line in lines), lines
        reply = httpx.post(
            f"http://127.0.0.1:{rpc_port}",
            json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        ).json()
        assert reply["result"] == "ok"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
