"""``aiw3 events relay [--once]`` as the operator runs it: a separate process, real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx

from store import migrate
from store.engine import create_engine, session_factory
from store.repos import outbox
from store.repos.transitions import NFT_EVENTS
from tests.services import REDIS_URL


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiw3",
        "events",
        "relay",
        *args,
        env={**os.environ, **env},
        cwd=env["HOME"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _database(tmp_path: Path, events: int) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/aiw3.db"
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session, session.begin():
            for n in range(events):
                await outbox.enqueue(session, NFT_EVENTS, "unlocked", {"n": n}, user_id=1)
    finally:
        await engine.dispose()
    return url


def _env(tmp_path: Path, url: str, redis: bool) -> dict[str, str]:
    env = {"HOME": str(tmp_path), "AIW3_DATABASE_URL": url, "AIW3_LOG_FORMAT": "json"}
    if redis:
        env["AIW3_REDIS_URL"] = REDIS_URL
    else:
        env["AIW3_REDIS_URL"] = ""
    return env


async def test_relay_once_publishes_to_the_redis_stream(tmp_path: Path, redis_client: Any) -> None:
    env = _env(tmp_path, await _database(tmp_path, 3), redis=True)
    proc = await _start(env, "--once")
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "published 3 events" in out.decode()
    entries = await redis_client.xrange(NFT_EVENTS)
    assert [fields[b"event_id"] for _, fields in entries] == [b"1", b"2", b"3"]

    proc = await _start(env, "--once")
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "published 0 events" in out.decode()
    assert len(await redis_client.xrange(NFT_EVENTS)) == 3


async def test_relay_stops_on_sigterm(tmp_path: Path, redis_client: Any) -> None:
    env = _env(tmp_path, await _database(tmp_path, 2), redis=True)
    proc = await _start(env, "--port", "0")
    try:
        for _ in range(1000):
            if await redis_client.xlen(NFT_EVENTS) == 2:
                break
            await asyncio.sleep(0.02)
        assert await redis_client.xlen(NFT_EVENTS) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    # The lease was given back: another relay may lead at once.
    assert await redis_client.get("aiw3:lease:outbox-relay") is None


async def test_relay_drops_the_cached_qualification_of_each_events_user(
    tmp_path: Path, redis_client: Any
) -> None:
    """The events may come from the indexer, which cannot reach the minting engine's cache:
    the relay drops ``nft_qual:{user_id}`` in the shared Redis for each event's user."""
    env = _env(tmp_path, await _database(tmp_path, 2), redis=True)  # both of user 1
    for user in (1, 2):
        await redis_client.set(f"nft_qual:{user}", "{}")
    proc = await _start(env, "--once")
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert await redis_client.get("nft_qual:1") is None
    assert await redis_client.get("nft_qual:2") == b"{}"


async def test_relay_serves_metrics_with_the_confirmed_upgrades(
    tmp_path: Path, redis_client: Any
) -> None:
    url = await _database(tmp_path, 0)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            payload = {"type": "upgraded", "user_id": 1, "from_level": 1, "to_level": 2}
            await outbox.enqueue(session, NFT_EVENTS, "upgraded", payload, user_id=1)
    finally:
        await engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await _start(_env(tmp_path, url, redis=True), "--port", str(port))
    wanted = 'nft_upgrades_total{from_level="1",status="confirmed",to_level="2"} 1.0'
    text = ""
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(500):  # a guard against a hang, not a timing assertion
                with contextlib.suppress(httpx.TransportError):
                    text = (await http.get("/metrics")).text
                    if wanted in text:
                        break
                await asyncio.sleep(0.05)
            assert (await http.get("/readyz")).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert wanted in text
    assert "nft_event_outbox_backlog 0.0" in text


async def test_a_separate_relay_without_redis_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path, await _database(tmp_path, 1), redis=False)
    proc = await _start(env, "--once")
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "relay_needs_redis" in err.decode()
