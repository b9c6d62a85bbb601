"""``python -m aiw3`` runs the CLI."""

from aiw3.cli import main

main()
