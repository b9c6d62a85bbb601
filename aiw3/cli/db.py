"""``aiw3 db``: schema migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
