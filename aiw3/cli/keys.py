"""``aiw3 keys``: create the system keypair and show public keys. Never prints a secret."""

from __future__ import annotations

from pathlib import Path

import typer

from aiw3.cli._common import err_console, fail, settings_or_exit
from aiw3.settings import SYSTEM_KEYPAIR_VARIABLE
from chain.keys import (
    Signer,
    load_keypair_file,
    write_keypair_file,
)
from core.errors import AIW3Error

app = typer.Typer(help="System keypair: create one, show its public key.", no_args_is_help=True)

DEFAULT_PATH = Path("~/.config/solana/id.json")


@app.command()
def new(
    path: Path = typer.Argument(  # noqa: B008  (Typer declares arguments this way)
        DEFAULT_PATH, help="Where to write the keypair (Solana CLI JSON format, mode 0600)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing keypair file."),
) -> None:
    """Generate a keypair; print its public key (stdout) and where it went (stderr)."""
    signer = Signer.generate()
    try:
        written = write_keypair_file(path, signer, force=force)
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    except OSError as exc:
        fail(f"cannot write {path.expanduser()}: {exc.strerror}", code="write_failed")
    # stdout carries the public key alone so scripts can capture it.
    typer.echo(str(signer.pubkey))
    err_console.print(
        f"wrote {written} (mode 0600). Use it with: export {SYSTEM_KEYPAIR_VARIABLE}={written}",
        highlight=False,
    )


@app.command()
def pubkey(
    path: Path | None = typer.Argument(  # noqa: B008
        None, help=f"A keypair file; without it, the keypair in {SYSTEM_KEYPAIR_VARIABLE}."
    ),
) -> None:
    """Print the public key of a keypair file or of the configured system keypair."""
    try:
        signer = load_keypair_file(path) if path is not None else settings_or_exit().system_signer()
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    typer.echo(str(signer.pubkey))
