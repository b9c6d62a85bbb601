"""The local chain: LiteSVM behind the Solana JSON-RPC and PubSub protocols (``aiw3 localnet``).

``Localnet`` serves it; ``LocalChain`` is the state machine underneath (usable in-process).
"""

from chain.localnet.runtime import Commitment, LocalChain, LocalnetConfig
from chain.localnet.server import Localnet

__all__ = ["Commitment", "LocalChain", "Localnet", "LocalnetConfig"]
