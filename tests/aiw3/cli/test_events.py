"""``aiw3 events relay [--once]`` as the operator runs it: a separate process, real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

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
    proc = await _start(env)
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


async def test_a_separate_relay_without_redis_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path, await _database(tmp_path, 1), redis=False)
    proc = await _start(env, "--once")
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "relay_needs_redis" in err.decode()
