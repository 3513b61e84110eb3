"""Every coordinator keeps the protocol's contract: one holder, rising tokens, due times kept."""

from __future__ import annotations

import asyncio

import pytest

from tickwork.coordination import Busy, Grant, TaskDecl

from .conftest import Backend

pytestmark = pytest.mark.timeout(30)


async def test_first_acquire_is_granted_and_a_peer_waits(backend: Backend) -> None:
    """A due task goes to the first replica; a peer is told the holder and to wait."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 10.0)])
    await b.declare([TaskDecl("t", 10.0)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    assert grant.token >= 1
    busy = await b.acquire("t")
    assert isinstance(busy, Busy)
    assert busy.holder == a.replica
    assert 0 < busy.wait <= a.ttl + 0.1


async def test_release_sets_the_next_due_time_for_everyone(backend: Backend) -> None:
    """After a release with wait W, every replica waits about W, then one is granted."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 0.5)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    assert await a.release(grant, wait=0.5, failures=0, outcome="success") == 0.5
    for replica in (a, b):
        busy = await replica.acquire("t")
        assert isinstance(busy, Busy)
        assert busy.holder is None
        assert 0.2 < busy.wait <= 0.5
    await backend.advance(0.6)
    second = await b.acquire("t")
    assert isinstance(second, Grant)
    assert second.token > grant.token


async def test_declare_never_moves_an_existing_due_time(backend: Backend) -> None:
    """A replica joining with run_immediately does not make a waiting task due."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("hourly", 3600.0, run_immediately=False)])
    await b.declare([TaskDecl("hourly", 3600.0, run_immediately=True)])
    busy = await b.acquire("hourly")
    assert isinstance(busy, Busy)
    assert 3500 < busy.wait <= 3600


async def test_expired_lease_passes_on_and_the_old_holder_is_superseded(backend: Backend) -> None:
    """Past the TTL a peer gets a higher token; the old grant can neither renew nor release."""
    a, b = await backend.replica(ttl=0.5), await backend.replica(ttl=0.5)
    await a.declare([TaskDecl("t", 10.0)])
    old = await a.acquire("t")
    assert isinstance(old, Grant)
    await backend.advance(0.7)
    new = await b.acquire("t")
    assert isinstance(new, Grant)
    assert new.token > old.token
    assert await a.renew(old) is None
    assert await a.release(old, wait=10.0, failures=0, outcome="success") is None
    assert await b.renew(new) == b.ttl


async def test_renewal_keeps_the_lease(backend: Backend) -> None:
    """A holder renewing within the TTL keeps its lease past the original TTL."""
    a, b = await backend.replica(ttl=0.6), await backend.replica(ttl=0.6)
    await a.declare([TaskDecl("t", 10.0)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    for _ in range(3):
        await backend.advance(0.3)
        assert await a.renew(grant) == a.ttl
        assert isinstance(await b.acquire("t"), Busy)


async def test_failures_survive_a_failover(backend: Backend) -> None:
    """Consecutive failures released by one replica come back in the next replica's grant."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 0.1)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    await a.release(grant, wait=0.0, failures=3, outcome="failure")
    await backend.advance(0.05)
    again = await b.acquire("t")
    assert isinstance(again, Grant)
    assert again.failures == 3


async def test_cluster_view_shows_peers_holders_and_orphans(backend: Backend) -> None:
    """The view lists live peers with their tasks, the holder and token, and orphaned rows."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 10.0), TaskDecl("old", 10.0)])
    await a.heartbeat(["t"])
    await b.heartbeat(["t"])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    view = await b.cluster_view()
    assert view.replica == b.replica
    assert {p.replica for p in view.peers} == {a.replica, b.replica}
    assert all(p.alive and p.tasks == ("t",) for p in view.peers)
    tasks = {t.name: t for t in view.tasks}
    assert tasks["t"].holder == a.replica
    assert tasks["t"].token == grant.token
    assert not tasks["t"].orphaned
    assert tasks["old"].orphaned
    assert await b.forget("old") is True
    assert await b.forget("old") is False
    assert [t.name for t in (await a.cluster_view()).tasks] == ["t"]


async def test_clusters_sharing_a_store_are_apart(backend: Backend) -> None:
    """Two cluster names in one store never see each other's tasks."""
    a = await backend.replica()
    other = await backend.replica(cluster="someone-else")
    await a.declare([TaskDecl("t", 10.0)])
    await other.declare([TaskDecl("t", 10.0)])
    assert isinstance(await a.acquire("t"), Grant)
    assert isinstance(await other.acquire("t"), Grant)


async def test_concurrent_acquires_grant_once(backend: Backend) -> None:
    """Twenty replicas asking at once for a due task: exactly one grant."""
    replicas = [await backend.replica() for _ in range(20)]
    await replicas[0].declare([TaskDecl("t", 10.0)])
    answers = await asyncio.gather(*(r.acquire("t") for r in replicas))
    assert sum(isinstance(answer, Grant) for answer in answers) == 1
