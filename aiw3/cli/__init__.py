"""The ``aiw3`` command line: one Typer app, one module per command group.

Each group module exposes ``app: typer.Typer`` (or a ``register(app)`` function for single
commands) and is wired in below. Commands build their resources from one ``Settings`` object.
"""

from __future__ import annotations

import typer

from aiw3.cli import asset, collection, db, events, indexer, ipfs, keys, localnet, mint, up

app = typer.Typer(
    name="aiw3",
    help="AIW3 Equity NFT service: minting engine, chain listener, reconciler and partner API.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold key material
)
app.add_typer(asset.app, name="asset")
app.add_typer(collection.app, name="collection")
app.add_typer(db.app, name="db")
app.add_typer(events.app, name="events")
app.add_typer(indexer.app, name="indexer")
app.add_typer(ipfs.app, name="ipfs")
app.add_typer(keys.app, name="keys")
app.add_typer(mint.app, name="mint")
app.command(name="up")(up.up)
localnet.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
