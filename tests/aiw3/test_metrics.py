"""Each process has its own registry; database statements are timed by operation."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from aiw3.metrics import Metrics
from store.engine import create_engine


def _count(metrics: Metrics, operation: str) -> float:
    value = metrics.registry.get_sample_value(
        "database_query_duration_seconds_count", {"operation": operation}
    )
    return value or 0.0


async def test_database_statements_are_observed(tmp_path: Path) -> None:
    metrics = Metrics()
    engine = create_engine(
        f"sqlite+aiosqlite:///{tmp_path}/m.db", query_duration=metrics.database_query_duration
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.execute(text("SELECT x FROM t"))
            await conn.execute(text("SELECT x FROM t"))
    finally:
        await engine.dispose()
    assert _count(metrics, "select") == 2
    assert _count(metrics, "insert") == 1
    assert _count(metrics, "other") >= 1  # CREATE TABLE (and the connection's PRAGMAs)
    assert b"database_query_duration_seconds_bucket" in metrics.render()


def test_registries_are_independent() -> None:
    first, second = Metrics(), Metrics()
    first.database_query_duration.labels("select").observe(0.1)
    assert _count(first, "select") == 1
    assert _count(second, "select") == 0
