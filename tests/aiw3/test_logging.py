"""Log lines are JSON with the fields operators search by, and carry the trace id."""

from __future__ import annotations

import io
import json
import logging

from aiw3.logging import bind_trace, configure_logging, get_logger
from aiw3.settings import LogFormat


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_trace_id() -> None:
    out = io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=out)
    log = get_logger("aiw3.test")
    with bind_trace(job="mint") as trace_id:
        log.info("minted", mint="M1")
        logging.getLogger("third.party").warning("plain %s", "stdlib")
    log.debug("hidden at INFO")
    log.info("after")
    first, second, third = _lines(out)
    assert first["event"] == "minted"
    assert first["mint"] == "M1"
    assert first["level"] == "info"
    assert first["logger"] == "aiw3.test"
    assert first["trace_id"] == trace_id
    assert first["job"] == "mint"
    assert str(first["timestamp"]).endswith("Z")
    assert second == {**second, "event": "plain stdlib", "trace_id": trace_id, "level": "warning"}
    assert "trace_id" not in third


def test_secret_named_fields_are_redacted() -> None:
    out = io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=out)
    get_logger("aiw3.test").info("config", pinata_jwt="eyJsecret", system_keypair="[1,2,3]")
    text = out.getvalue()
    assert "eyJsecret" not in text
    assert "[1,2,3]" not in text
    assert _lines(out)[0]["pinata_jwt"] == "[redacted]"


def test_console_format_for_terminals() -> None:
    out = io.StringIO()
    configure_logging("INFO", LogFormat.CONSOLE, stream=out)
    get_logger("aiw3.test").info("hello", a=1)
    text = out.getvalue()
    assert "hello" in text
    assert not text.startswith("{")
