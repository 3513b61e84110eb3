"""The simulator's request log: per-item counts that tell a duplicate fetch from two items."""

from __future__ import annotations

from urllib.parse import quote_from_bytes

import httpx

from miauflix.simulator import Simulator


async def test_a_torrent_fetched_directly_and_from_the_cache_counts_twice(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """A direct download and a cache download of one info hash count under one item."""
    source = sim.catalogue.sources[0]
    await client.get(f"{sim.base_url}/yts/torrent/download/{source.info_hash.hex().upper()}")
    await client.get(f"{sim.torrent_cache_url}/torrent/{source.info_hash.hex().upper()}.torrent")
    assert sim.requests.items[f"torrent:{source.info_hash.hex()}"] == 2


async def test_each_hash_of_a_scrape_and_each_season_counts_once(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """A scrape of two hashes counts each; a season asked once counts once, served as JSON."""
    a, b = sim.catalogue.sources[:2]
    query = "&".join(f"info_hash={quote_from_bytes(s.info_hash)}" for s in (a, b))
    await client.get(f"{sim.base_url}/tracker/scrape?{query}")
    show = sim.catalogue.shows[0]
    headers = {"Authorization": f"Bearer {sim.tmdb_token}"}
    await client.get(f"{sim.tmdb_url}/tv/{show.tmdb_id}/season/1", headers=headers)
    answer = (await client.get(f"{sim.base_url}/_simulator/requests")).json()
    assert answer["items"][f"scrape:{a.info_hash.hex()}"] == 1
    assert answer["items"][f"scrape:{b.info_hash.hex()}"] == 1
    assert answer["items"][f"season:{show.tmdb_id}/1"] == 1
    assert sum(answer["per_second"]["tracker"].values()) == 1
    assert "/_simulator/requests" not in answer["items"]
