"""``aiw3 ipfs add FILE`` / ``aiw3 ipfs cat CID``: what ``ipfs add`` and ``ipfs cat`` do, on
the configured pinner, so an operator can check any ``ipfs://`` URI an NFT points to."""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import BinaryIO

import typer

from aiw3.cli._common import fail, settings_or_exit
from aiw3.pinning import build_pinner
from core.errors import AIW3Error
from minting.ipfs import LocalPinner, Pinner, unixfs

app = typer.Typer(help="Content on IPFS: add a file, print a CID's bytes.", no_args_is_help=True)


@app.command()
def add(
    file: Path = typer.Argument(..., help="The file to add; - reads standard input."),  # noqa: B008
    cid_version: int = typer.Option(0, "--cid-version", min=0, max=1, help="0 (Qm...) or 1."),
    only_hash: bool = typer.Option(
        False, "--only-hash", "-n", help="Print the CID only; store and upload nothing."
    ),
) -> None:
    """Add FILE and print its CID, the one `ipfs add` (kubo, default settings) prints."""
    settings = settings_or_exit()
    version: unixfs.CidVersion = 1 if cid_version else 0
    try:
        with _open(file) as source:
            if only_hash:
                cid = str(unixfs.add(source, cid_version=version))
            else:
                pinner = build_pinner(settings)
                cid = asyncio.run(_add(pinner, source, file.name, version))
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", code="read_failed")
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    typer.echo(cid)


@app.command()
def cat(cid: str = typer.Argument(..., help="A CID, or an ipfs://CID URI.")) -> None:
    """Write the bytes under CID to standard output, checked against the CID."""
    settings = settings_or_exit()
    try:
        data = asyncio.run(_cat(build_pinner(settings), cid))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    sys.stdout.flush()
    sys.stdout.buffer.write(data)  # the bytes as they are: no encoding, no newline added
    sys.stdout.buffer.flush()


def _open(file: Path) -> AbstractContextManager[BinaryIO]:
    if str(file) == "-":
        return nullcontext(sys.stdin.buffer)  # standard input stays open
    return file.open("rb")


async def _add(pinner: Pinner, source: BinaryIO, name: str, version: unixfs.CidVersion) -> str:
    try:
        if isinstance(pinner, LocalPinner):
            # Chunk by chunk from the file: any size, one chunk in memory.
            return await asyncio.to_thread(pinner.add, source, cid_version=version)
        return await pinner.pin_bytes(source.read(), name=name, cid_version=version)
    finally:
        await pinner.aclose()


async def _cat(pinner: Pinner, cid: str) -> bytes:
    try:
        return await pinner.cat(cid)
    finally:
        await pinner.aclose()
