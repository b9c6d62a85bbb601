"""Chain listener: follows every transaction touching AIW3 NFTs (live subscription plus
backfill) and projects mints, transfers, burns and activations into the read model."""
