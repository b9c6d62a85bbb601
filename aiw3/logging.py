"""structlog set-up: JSON lines for machines, a readable console when attached to a terminal.

Every line has ``timestamp``, ``level``, ``logger`` and ``event``. A request or job binds a
``trace_id`` with :func:`bind_trace` (contextvars), so all lines it writes can be found together.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from aiw3.settings import LogFormat

_SECRET_KEYS = ("secret", "password", "keypair", "private", "jwt", "token_value", "authorization")


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Last line of defence: a field whose name says "secret" never reaches the output.
    for key in list(event_dict):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(
    level: str = "INFO", fmt: LogFormat = LogFormat.AUTO, stream: TextIO | None = None
) -> None:
    """Route structlog and the standard library's logging through one renderer."""
    out = stream if stream is not None else sys.stderr
    console = fmt is LogFormat.CONSOLE or (fmt is LogFormat.AUTO and out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True)
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter at INFO drowns our own lines.
    for noisy in (
        "httpx",
        "httpcore",
        "httpx2",
        "httpcore2",
        "websockets",
        "aiosqlite",
        "asyncio",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def new_trace_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bind_trace(trace_id: str | None = None, **fields: Any) -> Iterator[str]:
    """Bind a trace id (and extra fields) to every log line written inside the block."""
    tid = trace_id or new_trace_id()
    tokens = structlog.contextvars.bind_contextvars(trace_id=tid, **fields)
    try:
        yield tid
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
