"""Composition root of the AIW3 Equity NFT service: settings, logging, metrics and the CLI."""

__version__ = "0.1.0"
