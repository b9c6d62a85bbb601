"""Everything Solana: keys, the RPC client with failover, codecs for SPL Token, Token-2022
and Metaplex, the asset standards, and the local chain. Byte layouts live here, once."""
