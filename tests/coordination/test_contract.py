"""Every coordinator keeps the protocol's contract: one holder, rising tokens, due times kept.

And the operators' controls: a pause holds on every replica until resumed, a run-now request
grants one run as soon as no lease is live, and heartbeats hand both to every replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tickwork.coordination import Busy, Control, Grant, TaskDecl

from .conftest import BACKENDS, Backend, open_backend

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=[BACKENDS[0], "sqlite", *BACKENDS[1:]])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The folder's stores plus SQLite, whose replicas share one connection (one process)."""
    async with open_backend(request.param, request) as made:
        yield made


async def test_first_acquire_is_granted_and_a_peer_waits(backend: Backend) -> None:
    """A due task goes to the first replica; a peer is told the holder and to wait."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 10.0)])
    await b.declare([TaskDecl("t", 10.0)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    assert grant.token >= 1
    assert not grant.requested  # due, not asked for
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


async def test_controls_on_a_missing_row_answer_none(backend: Backend) -> None:
    """Pausing, resuming or requesting a run of a task the store has no row for: None."""
    a = await backend.replica()
    assert await a.set_paused("nope", True, by="alice") is None
    assert await a.set_paused("nope", False) is None
    assert await a.request_run("nope") is None
    assert await a.heartbeat([]) == []


async def test_a_paused_task_is_busy_on_every_replica_with_who_and_since_when(
    backend: Backend,
) -> None:
    """A paused due task is Busy(paused=True) for all, with paused_for and paused_by."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 10.0)])
    control = await a.set_paused("t", True, by="alice")
    assert control is not None
    assert (control.task, control.paused, control.paused_by) == ("t", True, "alice")
    assert control.paused_for is not None
    assert 0 <= control.paused_for < 0.5
    assert not control.run_requested
    await backend.advance(0.2)
    for replica in (a, b):
        busy = await replica.acquire("t")
        assert isinstance(busy, Busy)
        assert busy.paused
        assert busy.holder is None
        assert busy.paused_by == "alice"
        assert busy.paused_for is not None
        assert 0.15 <= busy.paused_for < 1.0
        assert busy.wait > 0


async def test_pausing_twice_keeps_the_first_pause(backend: Backend) -> None:
    """A second pause (by someone else, later) keeps the first one's time and author."""
    a = await backend.replica()
    await a.declare([TaskDecl("t", 10.0)])
    await a.set_paused("t", True, by="alice")
    await backend.advance(0.3)
    again = await a.set_paused("t", True, by="bob")
    assert again is not None
    assert again.paused_by == "alice"
    assert again.paused_for is not None
    assert again.paused_for >= 0.25


async def test_pausing_does_not_interrupt_a_held_run(backend: Backend) -> None:
    """The holder of a paused task renews and releases; peers see the pause and the holder."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 10.0)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    await b.set_paused("t", True, by="bob")
    busy = await b.acquire("t")
    assert isinstance(busy, Busy)
    assert busy.paused
    assert busy.holder == a.replica
    assert await a.renew(grant) == a.ttl
    assert await a.release(grant, wait=0.0, failures=0, outcome="success") == 0.0
    after = await a.acquire("t")
    assert isinstance(after, Busy)
    assert after.paused
    assert after.holder is None


async def test_resume_keeps_the_due_time(backend: Backend) -> None:
    """Resumed before its due time a task waits for it; due meanwhile, it runs once at once."""
    a = await backend.replica()
    await a.declare([TaskDecl("hourly", 3600.0, run_immediately=False), TaskDecl("t", 0.3)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    await a.release(grant, wait=0.3, failures=0, outcome="success")
    for name in ("hourly", "t"):
        await a.set_paused(name, True, by="alice")
    await backend.advance(0.5)  # "t" falls due while paused
    assert isinstance(await a.acquire("t"), Busy)
    resumed = await a.set_paused("hourly", False, by="bob")
    assert resumed == Control(task="hourly", paused=False)
    busy = await a.acquire("hourly")
    assert isinstance(busy, Busy)
    assert not busy.paused
    assert 3500 < busy.wait <= 3600
    await a.set_paused("t", False)
    again = await a.acquire("t")
    assert isinstance(again, Grant)
    assert again.token > grant.token
    assert await a.release(again, wait=10.0, failures=0, outcome="success") == 10.0
    later = await a.acquire("t")
    assert isinstance(later, Busy)
    assert 9 < later.wait <= 10


async def test_a_run_request_grants_a_task_that_is_not_due_once(backend: Backend) -> None:
    """request_run makes a waiting task's next acquire a grant; the grant consumes it."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("hourly", 3600.0, run_immediately=False)])
    control = await b.request_run("hourly")
    assert control == Control(task="hourly", paused=False, run_requested=True)
    grant = await b.acquire("hourly")
    assert isinstance(grant, Grant)
    assert grant.requested  # a calendar task runs it outside its instants
    assert isinstance(await a.acquire("hourly"), Busy)
    assert await b.release(grant, wait=3600.0, failures=0, outcome="success") == 3600.0
    busy = await a.acquire("hourly")
    assert isinstance(busy, Busy)
    assert 3500 < busy.wait <= 3600
    view = {t.name: t for t in (await a.cluster_view()).tasks}
    assert not view["hourly"].run_requested


async def test_a_run_request_grants_a_paused_task_once_and_it_stays_paused(
    backend: Backend,
) -> None:
    """A paused task with a run request is granted one run, then is paused again."""
    a = await backend.replica()
    await a.declare([TaskDecl("t", 0.1)])
    await a.set_paused("t", True, by="alice")
    control = await a.request_run("t")
    assert control is not None
    assert control.paused
    assert control.run_requested
    assert control.paused_by == "alice"
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    assert await a.release(grant, wait=0.1, failures=0, outcome="success") == 0.1
    await backend.advance(0.2)
    busy = await a.acquire("t")
    assert isinstance(busy, Busy)
    assert busy.paused
    assert busy.paused_by == "alice"


async def test_a_run_request_during_a_run_waits_and_makes_the_release_due_at_once(
    backend: Backend,
) -> None:
    """Requested while held: Busy(holder) until release, which returns 0; then one grant."""
    a, b = await backend.replica(), await backend.replica()
    await a.declare([TaskDecl("t", 100.0)])
    grant = await a.acquire("t")
    assert isinstance(grant, Grant)
    await b.request_run("t")
    busy = await b.acquire("t")
    assert isinstance(busy, Busy)
    assert busy.holder == a.replica
    assert not busy.paused
    assert await a.release(grant, wait=100.0, failures=0, outcome="success") == 0.0
    second = await b.acquire("t")
    assert isinstance(second, Grant)
    assert second.token > grant.token
    assert await b.release(second, wait=100.0, failures=0, outcome="success") == 100.0
    third = await a.acquire("t")
    assert isinstance(third, Busy)
    assert 90 < third.wait <= 100


async def test_heartbeat_returns_the_clusters_paused_and_requested_tasks(backend: Backend) -> None:
    """Every replica's heartbeat lists exactly its cluster's controlled tasks, by name."""
    a, b = await backend.replica(), await backend.replica()
    other = await backend.replica(cluster="someone-else")
    await a.declare([TaskDecl(name, 100.0, run_immediately=False) for name in "pqrs"])
    await other.declare([TaskDecl("p", 100.0), TaskDecl("x", 100.0)])
    await other.set_paused("x", True, by="them")
    await other.request_run("p")
    assert await a.heartbeat(["p", "q"]) == []
    await a.set_paused("p", True, by="alice")
    await a.request_run("r")
    await backend.advance(0.2)
    controls = await b.heartbeat(["s"])  # b does not declare p or r: it sees them anyway
    assert [c.task for c in controls] == ["p", "r"]
    paused, requested = controls
    assert (paused.paused, paused.paused_by, paused.run_requested) == (True, "alice", False)
    assert paused.paused_for is not None
    assert 0.15 <= paused.paused_for < 1.0
    assert requested == Control(task="r", paused=False, run_requested=True)
    await a.set_paused("p", False)
    assert isinstance(await a.acquire("r"), Grant)
    assert await b.heartbeat(["s"]) == []
    assert [c.task for c in await other.heartbeat([])] == ["p", "x"]


async def test_cluster_view_shows_the_controls(backend: Backend) -> None:
    """cluster_view carries paused_for, paused_by and run_requested per task."""
    a = await backend.replica()
    await a.declare([TaskDecl("p", 100.0), TaskDecl("r", 100.0), TaskDecl("z", 100.0)])
    await a.set_paused("p", True, by="alice")
    await a.request_run("r")
    await backend.advance(0.2)
    tasks = {t.name: t for t in (await a.cluster_view()).tasks}
    assert tasks["p"].paused
    assert tasks["p"].paused_by == "alice"
    assert tasks["p"].paused_for is not None
    assert 0.15 <= tasks["p"].paused_for < 1.0
    assert not tasks["p"].run_requested
    assert tasks["r"].run_requested
    assert not tasks["r"].paused
    assert (tasks["r"].paused_for, tasks["r"].paused_by) == (None, None)
    assert not tasks["z"].paused
    assert not tasks["z"].run_requested
