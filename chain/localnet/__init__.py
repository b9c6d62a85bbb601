"""The local chain: LiteSVM behind the Solana JSON-RPC and PubSub protocols (``aiw3 localnet``).

Use it as you would a Solana node (solana-py ``AsyncClient`` / ``SolanaWsClient``); in tests,
start it in-process on free ports::

    async with Localnet(LocalnetConfig(slot_ms=20, finality_depth=6), rpc_port=0, ws_port=0) as net:
        rpc = AsyncClient(net.rpc_url)          # net.ws_url for subscriptions

Behaviour worth knowing:

- One block per slot on a clock. A transaction lands in the current block: ``processed`` there,
  ``confirmed`` once one block is built on it, ``finalized`` after ``finality_depth`` blocks.
  Reads (getAccountInfo, getBalance, getProgramAccounts, ...) return the state as of the block
  at the requested commitment (default ``finalized``, like a node).
- A blockhash is valid for 150 blocks (``lastValidBlockHeight`` = height + 150). Preflight runs
  on the block at ``preflightCommitment``: the blockhash must be known there, so fetch blockhashes
  at the same commitment you send with.
- Duplicates never execute twice, however long ago the first copy landed.
- Test-only methods (JSON-RPC over HTTP):
  ``localnet_setAccount [pubkey, {lamports, owner, data: [<base64>, "base64"], executable}]``
  writes an account (lamports 0 deletes it) and indexes it like any other write;
  ``localnet_dropSlots [n]`` drops the newest ``n`` blocks (the current one included; none may
  be finalized) as a fork switch would: their transactions vanish, every account returns to its
  state at the fork point, and the next block (a new, higher slot) has the fork point as parent.
  It answers ``{droppedSlots, forkSlot, slot}``; ``processed`` account and program subscribers
  are notified of every account the drop restored; ``confirmed`` ones, of every restored
  account they had seen on a dropped confirmed block, when the new branch's first block confirms.
  ``localnet_dropConnections [[subscription ids]?]`` closes every PubSub connection (or those
  holding the given subscriptions) from the server side, close code 1001, as a node restart or
  a load balancer would; it answers ``{closedConnections, subscriptions}``.
- ``logsSubscribe`` with ``mentions`` is indexed by address: many subscriptions cost nothing
  per transaction beyond a lookup per account key.

``LocalChain`` is the state machine underneath, usable in-process without any I/O.
"""

from chain.localnet.runtime import CommitmentLevel, LocalChain, LocalnetConfig
from chain.localnet.server import Localnet

__all__ = ["CommitmentLevel", "LocalChain", "Localnet", "LocalnetConfig"]
