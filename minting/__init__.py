"""Minting engine: qualification, claim / activate / upgrade, metadata to IPFS, and sending
each mint transaction exactly once (the intent is recorded in ``mint_operations`` first)."""
