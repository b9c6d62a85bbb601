"""aiw3.health: /metrics, /livez and /readyz as the two checks say."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from aiw3.health import serve_health


async def test_probes_follow_the_checks_and_metrics_are_exported() -> None:
    registry = CollectorRegistry()
    Counter("probe_things_total", "Things.", registry=registry).inc()
    state = {"alive": True, "ready": False}
    server = await serve_health(
        registry,
        alive=lambda: state["alive"],
        ready=lambda: state["ready"],
        host="127.0.0.1",
        port=0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/readyz")).status_code == 503
            state.update(alive=False, ready=True)
            assert (await http.get("/livez")).status_code == 503
            assert (await http.get("/readyz")).status_code == 200
            assert "probe_things_total 1.0" in (await http.get("/metrics")).text
            assert (await http.get("/nope")).status_code == 404
    finally:
        server.close()
        await server.wait_closed()
