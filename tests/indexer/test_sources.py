"""indexer.sources against the local chain: crawling pages, live notifications, a dropped
connection re-subscribed with a gap reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chain.localnet import Localnet
from chain.rpc import RpcClient
from indexer.sources import CrawlSource, Event, Gap, Seen, WebsocketSource, list_many
from tests.harness.localnet import raw_rpc

from . import chainops as ops
from .chainops import Deployment

# A guard against a hang, not a timing assertion.
_PATIENCE = 20.0


async def _next(events: AsyncIterator[Event], want: type) -> Event:
    async def find() -> Event:
        async for event in events:
            if isinstance(event, want):
                return event
        raise AssertionError("source ended")

    return await asyncio.wait_for(find(), _PATIENCE)


async def test_crawl_pages_between_cursors(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    alice = await ops.fund(client)
    mint, first = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
    later = [await ops.activate(client, alice, mint) for _ in range(4)]
    seen = [e async for e in CrawlSource(rpc, str(mint), page_size=2)]
    assert [e.signature for e in seen if isinstance(e, Seen)] == [
        str(s) for s in reversed([first, *later])
    ]
    since = [e async for e in CrawlSource(rpc, str(mint), until=str(later[1]), page_size=1)]
    assert [e.signature for e in since if isinstance(e, Seen)] == [
        str(later[3]),
        str(later[2]),
    ]


async def test_listing_many_addresses_at_once_equals_crawling_each(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment
) -> None:
    """``list_many`` (JSON-RPC batches, paging each address whose page was full) lists what a
    CrawlSource of each address lists, cursors and empty histories included."""
    alice = await ops.fund(client)
    mints = []
    for n in range(3):
        mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
        for _ in range(n * 2):
            await ops.activate(client, alice, mint)
        mints.append(str(mint))
    nobody = str(Keypair().pubkey())
    first_of_last = (await rpc.get_signatures_for_address(Pubkey.from_string(mints[2])))[-1]
    untils = {mints[0]: None, mints[1]: None, mints[2]: str(first_of_last.signature), nobody: None}
    for page_size in (1, 2, 1000):
        listed = await list_many(rpc, untils, page_size=page_size)
        for address, until in untils.items():
            crawled = CrawlSource(rpc, address, until=until, page_size=page_size)
            assert listed[address] == [e async for e in crawled], (address, page_size)
    assert listed[nobody] == []
    assert [len(listed[m]) for m in mints] == [1, 3, 4]  # the last one from its cursor


async def test_live_notifications_survive_a_dropped_connection(
    localnet: Localnet, client: AsyncClient, deployment: Deployment
) -> None:
    alice, bob = await ops.fund(client), Keypair().pubkey()
    mint, _ = await ops.mint(client, deployment.system, alice.pubkey(), collection=None)
    reconnects: list[int] = []
    source = WebsocketSource(
        localnet.ws_url, [str(mint)], max_connections=2, on_reconnect=lambda: reconnects.append(1)
    )
    events = aiter(source)
    try:
        assert await _next(events, Gap) == Gap((str(mint),))
        sig = await ops.transfer_checked(client, alice, mint, bob)
        seen = await _next(events, Seen)
        assert seen == Seen(str(sig), seen.slot, False, str(mint))  # type: ignore[union-attr]

        # Drop every connection the server holds: the source reconnects, re-subscribes, and
        # says which addresses to crawl for what it may have missed.
        dropped = await raw_rpc(localnet.rpc_url, "localnet_dropConnections")
        assert dropped["result"]["closedConnections"] >= 1
        assert await _next(events, Gap) == Gap((str(mint),))
        assert reconnects == [1]
        bob_ata = ops.ata_of(bob, mint)
        await source.follow([str(bob_ata)])
        assert await _next(events, Gap) == Gap((str(bob_ata),))
        assert source.live_subscriptions() == 2
    finally:
        await source.close()
