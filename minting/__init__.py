"""minting package."""
