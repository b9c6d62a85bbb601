"""What every command shares: the settings, logging set-up and one way to fail."""

from __future__ import annotations

import asyncio
import signal
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from aiw3.logging import configure_logging
from aiw3.settings import Settings, load_settings
from core.errors import AIW3Error

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, *, code: str = "error", exit_code: int = 1) -> NoReturn:
    """Print one clear line (``error[code]: message``) and exit."""
    err_console.print(
        f"[bold red]error[/bold red]{escape(f'[{code}]')}: {escape(message)}", highlight=False
    )
    raise typer.Exit(exit_code)


def settings_or_exit() -> Settings:
    """Load settings and configure logging, or stop with the line that names the variable."""
    try:
        settings = load_settings()
    except AIW3Error as exc:
        fail(exc.message, code=exc.code, exit_code=2)
    configure_logging(settings.log_level, settings.log_format)
    return settings


async def wait_for_stop_signal() -> None:
    """Return on the first SIGINT or SIGTERM (Ctrl-C, ``kill``, a container stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
