"""HTTP API: partner ownership (REST and DAS JSON-RPC), user endpoints (sign-in with
Solana, claim, activate, upgrade), event stream, health and metrics."""
