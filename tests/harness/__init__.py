"""Test harness shared by every part's tests: the local chain, funded wallets, fault injection."""
