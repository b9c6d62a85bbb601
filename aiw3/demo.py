"""Demo data for ``aiw3 up`` on the local chain: a funded development system wallet, three
traders, and the claims of those who qualify.

Everything here is for a machine's own local chain, which starts empty on every run; nothing
of it runs against a remote RPC. The wallets' keypairs are written under ``.aiw3/`` (mode 0600,
git-ignored) so that a developer can sign as a user (an activation, an upgrade).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.keys import Signer, load_keypair_file, write_keypair_file
from chain.rpc import RpcClient
from core.errors import AIW3Error, ChainError
from minting.claims import Claims
from store.repos import users
from store.tables import Badge, Trade

#: Where ``aiw3 up`` keeps what it generates (git-ignored).
STATE_DIR: Final = Path(".aiw3")
SOL: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Trader:
    """One demo user: its volume in USD and its badges decide what it may claim."""

    name: str
    volume: Decimal
    badges: int


#: Level 1 needs 100,000 USD; level 2 needs 500,000 and two badges (the tier table's rows).
TRADERS: Final = (
    Trader("alice", Decimal("150000.00"), 0),  # claims level 1
    Trader("bob", Decimal("650000.00"), 2),  # claims level 1, may upgrade to level 2
    Trader("carol", Decimal("40000.00"), 0),  # not yet qualified
)


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    wallet: str
    keypair_file: Path
    claim: str  # "operation N (state)" or the error code that refused it


def keypair(path: Path) -> Signer:
    """The keypair in ``path``, written first if it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_keypair_file(path, Signer(Keypair()))
    return load_keypair_file(path)


async def fund(rpc: RpcClient, signer: Signer, lamports: int) -> None:
    """Top ``signer`` up to ``lamports`` from the local chain's faucet, confirmed."""
    timeout = 30.0
    balance = (await rpc.get_balance(signer.pubkey, Confirmed)).value
    if balance >= lamports:
        return
    signature = await rpc.request_airdrop(signer.pubkey, lamports - balance)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        status = (await rpc.get_signature_statuses([signature])).value[0]
        if status is not None and status.confirmation_status is not None:
            return
        await asyncio.sleep(0.1)
    raise ChainError(f"the faucet's airdrop to {signer.pubkey} was not confirmed in {timeout} s")


async def seed(
    sessions: async_sessionmaker[AsyncSession], claims: Claims, state_dir: Path = STATE_DIR
) -> list[DemoUser]:
    """Create the demo traders (once: a second run finds them) and claim for each of them."""
    seeded = []
    for trader in TRADERS:
        file = state_dir / "demo" / f"{trader.name}.json"
        wallet = str(keypair(file).pubkey)
        async with sessions() as session, session.begin():
            await _trader(session, wallet, trader)
        try:
            outcome = await claims.claim(wallet)
            claim = f"operation {outcome.operation.id} ({outcome.operation.state})"
        except AIW3Error as exc:
            claim = exc.code
        seeded.append(DemoUser(trader.name, wallet, file, claim))
    return seeded


async def _trader(session: AsyncSession, wallet: str, trader: Trader) -> None:
    user = await users.get_or_create_user(session, wallet)
    await session.flush()
    trades = await session.scalar(
        select(func.count()).select_from(Trade).where(Trade.user_id == user.id)
    )
    if not trades:
        await users.add_trade(session, user.id, trader.volume, None)
    badges = await session.scalar(
        select(func.count()).select_from(Badge).where(Badge.user_id == user.id)
    )
    for number in range(int(badges or 0), trader.badges):
        await users.add_badge(session, user.id, f"demo-badge-{number}")
