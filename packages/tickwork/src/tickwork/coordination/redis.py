"""Redis coordinator: the cluster's schedule in hashes, on the Redis server's clock.

Needs the ``[redis]`` extra (``pip install 'tickwork[redis]'``, redis-py)::

    from tickwork.coordination.redis import RedisCoordinator

    coordinator = RedisCoordinator("redis://cache:6379/0", cluster="jobs")
    async with Scheduler(coordinator=coordinator) as scheduler: ...

Design: one hash per task (``{tw:CLUSTER}:task:NAME``: due time, holder, fencing token, lease
expiry, runs, failures, outcome), a fence counter (``INCR``), a set of task names, hashes of
replicas (their declaration, when they joined and were last seen) and one hash of operators'
controls (``{tw:CLUSTER}:controls``: ``p:NAME`` paused since, ``b:NAME`` paused by, ``r:NAME``
a run-now request), so that a heartbeat reads the cluster's controls from a key it declares,
in the same script, without visiting every task. Every
change is one Lua script that reads the time with ``TIME`` on the server, so replicas only ever
see durations; renew and release compare the holder and the token first. Every key of a cluster
carries the same hash tag, so all of them live in one slot and Redis Cluster works.

Honest limits (see the README): Redis replication is asynchronous, so a failover can lose the
last grant *and its token increment* (two holders may then share a token); without persistence
(AOF) a restart resets the counter; leases follow the Redis host's clock steps. Where fencing
must be airtight, use PostgreSQL; with Redis, guard the data's own writes with a column that
refuses a token lower than the last one written (see :func:`check`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from tickwork._extras import require_extra
from tickwork._lease import Lease, LeaseLostError
from tickwork.coordination._protocol import (
    Busy,
    ClusterView,
    Control,
    CoordinatorError,
    Grant,
    PeerView,
    TaskDecl,
    TaskView,
)

require_extra("tickwork.coordination.redis", "redis", ("redis",))

import redis.asyncio as aioredis  # noqa: E402
import redis.exceptions  # noqa: E402

__all__ = ["RedisCoordinator", "check"]

_ALIVE_HEARTBEATS = 3.0
# How often a paused task is looked at again (milliseconds).
_PAUSED_RECHECK_MS = 5000
_MIN_WAIT = 0.05
_ERRORS = (OSError, redis.exceptions.RedisError, TimeoutError)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: task names set, then one task hash per declared task. ARGV: interval_s, immediate (0/1)
# for each task, in the same order, then the names.
_DECLARE = (
    _NOW
    + """
local n = #KEYS - 1
for i = 1, n do
  local key = KEYS[i + 1]
  local interval = tonumber(ARGV[2 * i - 1])
  local name = ARGV[2 * n + i]
  if redis.call('EXISTS', key) == 0 then
    local due = now
    if ARGV[2 * i] == '0' then due = now + math.floor(interval * 1000) end
    redis.call('HSET', key, 'interval', ARGV[2 * i - 1], 'next_due_ms', due, 'fence', 0,
               'runs', 0, 'failures', 0)
  else
    redis.call('HSET', key, 'interval', ARGV[2 * i - 1])
  end
  redis.call('SADD', KEYS[1], name)
end
return n
"""
)

# KEYS: task hash, fence counter, controls hash. ARGV: replica, ttl_ms, task name.
# A run-now request (r:NAME) overrides the due time and a pause; the grant consumes it.
_ACQUIRE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {2} end
local h = redis.call('HMGET', KEYS[1], 'next_due_ms', 'lease_until_ms', 'holder', 'failures')
local c = redis.call('HMGET', KEYS[3], 'p:' .. ARGV[3], 'b:' .. ARGV[3], 'r:' .. ARGV[3])
local due = tonumber(h[1]) or 0
local lease = tonumber(h[2]) or 0
local holder = ''
if lease > now then holder = h[3] or '' end
if c[1] and not c[3] then return {0, PAUSED_RECHECK_MS, holder, 1, now - tonumber(c[1]), c[2]} end
if lease > now then return {0, lease - now, holder, 0} end
if due > now and not c[3] then return {0, due - now, '', 0} end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'fence', fence,
           'lease_until_ms', now + tonumber(ARGV[2]), 'started_ms', now)
redis.call('HDEL', KEYS[3], 'r:' .. ARGV[3])
local requested = 0
if c[3] then requested = 1 end
return {1, fence, tonumber(h[4]) or 0, requested}
""".replace("PAUSED_RECHECK_MS", str(_PAUSED_RECHECK_MS))
)

# KEYS: task hash. ARGV: replica, fence, ttl_ms.
_RENEW = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'holder', 'fence', 'lease_until_ms')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] or (tonumber(h[3]) or 0) <= now then return 0 end
redis.call('HSET', KEYS[1], 'lease_until_ms', now + tonumber(ARGV[3]))
return 1
"""
)

# KEYS: task hash, controls hash. ARGV: replica, fence, wait_ms, failures, outcome, task name.
# Returns 0 (superseded), 1 (due in wait_ms) or 2 (a run-now request waits: due at once).
_RELEASE = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'holder', 'fence')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] then return 0 end
local answer, wait = 1, tonumber(ARGV[3])
if redis.call('HEXISTS', KEYS[2], 'r:' .. ARGV[6]) == 1 then answer, wait = 2, 0 end
redis.call('HDEL', KEYS[1], 'holder', 'lease_until_ms')
redis.call('HSET', KEYS[1], 'finished_ms', now, 'next_due_ms', now + wait,
           'failures', ARGV[4], 'last_outcome', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'runs', 1)
return answer
"""
)

# KEYS: replicas hash, seen hash, joined hash, controls hash. ARGV: replica, its description
# (JSON). Returns the server time and the controls hash, flattened.
_HEARTBEAT = (
    _NOW
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], now)
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then redis.call('HSET', KEYS[3], ARGV[1], now) end
return {now, redis.call('HGETALL', KEYS[4])}
"""
)

# The control of ARGV[1] after a change: {paused since (ms) or nil, paused by or nil,
# run requested (1) or nil, now}.
_CONTROL = """
local c = redis.call('HMGET', KEYS[2], 'p:' .. ARGV[1], 'b:' .. ARGV[1], 'r:' .. ARGV[1])
return {c[1], c[2], c[3], now}
"""

# KEYS: task hash, controls hash. ARGV: task name, paused (0/1), by given (0/1), by.
# Pausing a paused task keeps the first pause's time and author; resuming clears both.
_SET_PAUSED = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[2] == '1' then
  if redis.call('HSETNX', KEYS[2], 'p:' .. ARGV[1], now) == 1 then
    if ARGV[3] == '1' then redis.call('HSET', KEYS[2], 'b:' .. ARGV[1], ARGV[4])
    else redis.call('HDEL', KEYS[2], 'b:' .. ARGV[1]) end
  end
else
  redis.call('HDEL', KEYS[2], 'p:' .. ARGV[1], 'b:' .. ARGV[1])
end
"""
    + _CONTROL
)

# KEYS: task hash, controls hash. ARGV: task name.
_REQUEST_RUN = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[2], 'r:' .. ARGV[1], 1)
"""
    + _CONTROL
)

# KEYS: task hash. ARGV: replica, fence.
_CHECK = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'holder', 'fence', 'lease_until_ms')
if h[1] == ARGV[1] and h[2] == ARGV[2] and (tonumber(h[3]) or 0) > now then return 1 end
return 0
"""
)


# Runs a caller's script only while the lease is current. KEYS[1]: the task hash; ARGV[1], ARGV[2]:
# replica and token; the caller's KEYS and ARGV follow, and the script sees them as its own.
_FENCED = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'holder', 'fence', 'lease_until_ms')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] or (tonumber(h[3]) or 0) <= now then
  return redis.error_reply('TICKWORK_LEASE_LOST')
end
local keys = {}
for i = 2, #KEYS do keys[i - 1] = KEYS[i] end
local argv = {}
for i = 3, #ARGV do argv[i - 2] = ARGV[i] end
local function body(KEYS, ARGV, now)
SCRIPT
end
return body(keys, argv, now)
"""
)


class RedisCoordinator:
    """A coordinator on Redis (redis-py's asyncio client).

    Args:
        url: A ``redis://`` or ``rediss://`` URL.
        cluster: The cluster name (its keys share the hash tag ``{tw:CLUSTER}``).
        ttl: Lease time to live in seconds.
        replica: This replica's id; ``host:pid:random`` by default.
        heartbeat: Seconds between heartbeats; ``min(10, ttl)`` by default.
        timeout: Seconds a call may take; ``max(1, ttl / 3)`` by default.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        cluster: str,
        ttl: float = 30.0,
        replica: str | None = None,
        heartbeat: float | None = None,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url must be a redis:// URL, got {url!r}")
        if not isinstance(cluster, str) or not cluster or "}" in cluster:
            raise ValueError(f"cluster must be a non-empty string without '}}', got {cluster!r}")
        if heartbeat is None:
            heartbeat = min(10.0, ttl) if isinstance(ttl, int | float) else 10.0
        for name, value in (("ttl", ttl), ("heartbeat", heartbeat)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self._url = url
        self._cluster = cluster
        self._ttl = float(ttl)
        self._heartbeat = float(heartbeat)
        self._timeout = float(timeout) if timeout is not None else max(1.0, self._ttl / 3)
        self._replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._prefix = f"{{tw:{cluster}}}:"
        self._client: aioredis.Redis | None = None
        self._decls: dict[str, TaskDecl] = {}
        self._scripts: dict[str, Any] = {}
        self._fenced_scripts: dict[str, Any] = {}

    @property
    def cluster(self) -> str:
        return self._cluster

    @property
    def replica(self) -> str:
        return self._replica

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def heartbeat_interval(self) -> float:
        return self._heartbeat

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def key(self, name: str) -> str:
        """A key for the application's own data in this cluster's hash slot.

        Scripts run by :meth:`fenced_eval` may only touch keys of the same slot in Redis
        Cluster: build them with this method.
        """
        return self._key("app", name)

    async def fenced_eval(
        self, lease: Lease, script: str, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Run a Lua ``script`` atomically on the server, only while ``lease`` is current.

        The script sees ``KEYS`` and ``ARGV`` as given here and the server time in
        milliseconds as ``now``. This is the fenced write of Redis-stored data: the check and
        the write happen in one script, so a replica paused past its lease cannot write.

        Raises:
            LeaseLostError: The lease is no longer the task's current, unexpired one.
            CoordinatorError: The server cannot be reached.
        """
        lease.check()
        source = _FENCED.replace("SCRIPT", script)
        script_object = self._fenced_scripts.get(source)
        if script_object is None:
            script_object = self._fenced_scripts[source] = self._redis().register_script(source)
        try:
            return await script_object(
                keys=[self._key("task", lease.task), *keys],
                args=[lease.replica, lease.token, *args],
            )
        except redis.exceptions.ResponseError as exc:
            if "TICKWORK_LEASE_LOST" in str(exc):
                lease._lose("superseded: Redis refused its token")
                raise LeaseLostError(lease.task, lease.token, "Redis refused its token") from None
            raise CoordinatorError(f"Redis coordinator: {exc}") from exc
        except _ERRORS as exc:
            raise CoordinatorError(f"Redis coordinator: {type(exc).__name__}: {exc}") from exc

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                decode_responses=True,
            )
            client = self._client
            self._scripts = {
                name: client.register_script(source)
                for name, source in (
                    ("declare", _DECLARE),
                    ("acquire", _ACQUIRE),
                    ("renew", _RENEW),
                    ("release", _RELEASE),
                    ("heartbeat", _HEARTBEAT),
                    ("set_paused", _SET_PAUSED),
                    ("request_run", _REQUEST_RUN),
                    ("check", _CHECK),
                )
            }
        return self._client

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        self._redis()
        try:
            return await self._scripts[name](keys=keys, args=args)
        except _ERRORS as exc:
            raise CoordinatorError(f"Redis coordinator: {type(exc).__name__}: {exc}") from exc

    async def start(self) -> None:
        try:
            await self._redis().ping()
        except _ERRORS as exc:
            raise CoordinatorError(f"Redis coordinator: cannot reach the server: {exc}") from exc

    async def declare(self, tasks: Sequence[TaskDecl]) -> None:
        for decl in tasks:
            self._decls[decl.name] = decl
        if not tasks:
            return
        keys = [self._key("tasks"), *(self._key("task", d.name) for d in tasks)]
        args: list[Any] = []
        for decl in tasks:
            args += [repr(float(decl.interval)), "1" if decl.run_immediately else "0"]
        args += [d.name for d in tasks]
        await self._script("declare", keys, args)

    async def acquire(self, task: str) -> Grant | Busy:
        answer = await self._script(
            "acquire",
            [self._key("task", task), self._key("fence"), self._key("controls")],
            [self._replica, int(self._ttl * 1000), task],
        )
        kind = int(answer[0])
        if kind == 1:
            return Grant(
                task=task,
                token=int(answer[1]),
                ttl=self._ttl,
                failures=int(answer[2]),
                requested=int(answer[3]) == 1,
            )
        if kind == 2:
            decl = self._decls.get(task)
            if decl is not None:
                await self.declare([decl])
            return Busy(wait=_MIN_WAIT if decl is not None else 1.0)
        paused = int(answer[3]) == 1
        return Busy(
            wait=max(_MIN_WAIT, int(answer[1]) / 1000),
            holder=answer[2] or None,
            paused=paused,
            paused_for=int(answer[4]) / 1000 if paused else None,
            paused_by=answer[5] if paused else None,
        )

    async def renew(self, grant: Grant) -> float | None:
        answer = await self._script(
            "renew",
            [self._key("task", grant.task)],
            [self._replica, grant.token, int(self._ttl * 1000)],
        )
        return self._ttl if int(answer) == 1 else None

    async def release(
        self, grant: Grant, *, wait: float, failures: int, outcome: str
    ) -> float | None:
        answer = await self._script(
            "release",
            [self._key("task", grant.task), self._key("controls")],
            [self._replica, grant.token, int(max(0.0, wait) * 1000), failures, outcome, grant.task],
        )
        return {0: None, 1: wait, 2: 0.0}[int(answer)]

    async def heartbeat(self, tasks: Sequence[str]) -> Sequence[Control]:
        host = self._replica.partition(":")[0]
        description = json.dumps({"host": host, "pid": os.getpid(), "tasks": list(tasks)})
        now, flat = await self._script(
            "heartbeat",
            [self._key("replicas"), self._key("seen"), self._key("joined"), self._key("controls")],
            [self._replica, description],
        )
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        return [controls for _, controls in sorted(_controls(fields, int(now)).items())]

    async def set_paused(self, task: str, paused: bool, *, by: str | None = None) -> Control | None:
        answer = await self._script(
            "set_paused",
            [self._key("task", task), self._key("controls")],
            [task, int(paused), int(by is not None), by or ""],
        )
        return None if answer is None else _control(task, answer)

    async def request_run(self, task: str) -> Control | None:
        answer = await self._script(
            "request_run", [self._key("task", task), self._key("controls")], [task]
        )
        return None if answer is None else _control(task, answer)

    async def fenced(self, lease: Lease) -> bool:
        """Whether ``lease`` is still the current, unexpired lease of its task (server time)."""
        answer = await self._script(
            "check", [self._key("task", lease.task)], [lease.replica, lease.token]
        )
        return int(answer) == 1

    async def cluster_view(self) -> ClusterView:
        client = self._redis()
        try:
            seconds, micros = await client.time()
            now = seconds * 1000 + micros // 1000
            names: list[str] = sorted(map(str, await client.smembers(self._key("tasks"))))
            replicas = _strings(await client.hgetall(self._key("replicas")))
            seen = _strings(await client.hgetall(self._key("seen")))
            joined = _strings(await client.hgetall(self._key("joined")))
            rows = [_strings(await client.hgetall(self._key("task", name))) for name in names]
            controls = _controls(_strings(await client.hgetall(self._key("controls"))), now)
        except _ERRORS as exc:
            raise CoordinatorError(f"Redis coordinator: {type(exc).__name__}: {exc}") from exc
        alive_after = _ALIVE_HEARTBEATS * self._heartbeat * 1000
        peers = []
        for replica in sorted(replicas):
            info = json.loads(replicas[replica])
            last = int(seen.get(replica, 0))
            peers.append(
                PeerView(
                    replica=replica,
                    host=str(info.get("host", "")),
                    pid=int(info.get("pid", 0)),
                    started_ago=(now - int(joined.get(replica, last))) / 1000,
                    last_seen_ago=(now - last) / 1000,
                    alive=now - last <= alive_after,
                    tasks=tuple(info.get("tasks", ())),
                )
            )
        declared = {name for peer in peers if peer.alive for name in peer.tasks}
        tasks = []
        for name, row in zip(names, rows, strict=True):
            if not row:
                continue
            lease = int(row["lease_until_ms"]) if row.get("lease_until_ms") else None
            held = lease is not None and lease > now
            control = controls.get(name, Control(task=name, paused=False))
            tasks.append(
                TaskView(
                    name=name,
                    interval=float(row["interval"]) if row.get("interval") else None,
                    holder=row.get("holder") if held else None,
                    token=int(row.get("fence", 0)),
                    lease_expires_in=None if lease is None else (lease - now) / 1000,
                    next_due_in=(int(row.get("next_due_ms", now)) - now) / 1000,
                    runs=int(row.get("runs", 0)),
                    failures=int(row.get("failures", 0)),
                    last_outcome=row.get("last_outcome"),
                    paused=control.paused,
                    orphaned=name not in declared,
                    paused_for=control.paused_for,
                    paused_by=control.paused_by,
                    run_requested=control.run_requested,
                )
            )
        return ClusterView(self.backend, self._cluster, self._replica, tuple(peers), tuple(tasks))

    async def forget(self, task: str) -> bool:
        client = self._redis()
        try:
            # One MULTI (every key in the cluster's slot): no control outlives its task.
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(self._key("task", task))
                pipe.srem(self._key("tasks"), task)
                pipe.hdel(self._key("controls"), f"p:{task}", f"b:{task}", f"r:{task}")
                removed, _, _ = await pipe.execute()
        except _ERRORS as exc:
            raise CoordinatorError(f"Redis coordinator: {type(exc).__name__}: {exc}") from exc
        return bool(removed)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._fenced_scripts.clear()
        try:
            for key in ("replicas", "seen", "joined"):
                await client.hdel(self._key(key), self._replica)
        except _ERRORS:
            pass  # leaving is best effort: a silent peer is gone after three heartbeats anyway
        finally:
            await client.aclose()


def _strings(mapping: Any) -> dict[str, str]:
    return {str(key): str(value) for key, value in mapping.items()}


def _control(task: str, answer: Sequence[Any]) -> Control:
    paused_ms, by, requested, now = answer
    return Control(
        task=task,
        paused=paused_ms is not None,
        paused_for=None if paused_ms is None else (int(now) - int(paused_ms)) / 1000,
        paused_by=by,
        run_requested=requested is not None,
    )


def _controls(fields: dict[str, str], now: int) -> dict[str, Control]:
    """The controls hash (``p:NAME``, ``b:NAME``, ``r:NAME``) as one Control per task."""
    names = {field.partition(":")[2] for field in fields}
    return {
        name: _control(
            name, [fields.get(f"p:{name}"), fields.get(f"b:{name}"), fields.get(f"r:{name}"), now]
        )
        for name in names
    }


async def check(coordinator: RedisCoordinator, lease: Lease) -> None:
    """Raise :class:`tickwork.LeaseLostError` unless ``lease`` is still current on the server.

    This is a check, not a fence: a write after it is not atomic with it. Fence the data's own
    writes with the token (refuse a token lower than the last one written, in the same
    statement as the write) where a paused replica must never overwrite newer data.
    """
    lease.check()
    if not await coordinator.fenced(lease):
        lease._lose("superseded: Redis refused its token")
        raise LeaseLostError(lease.task, lease.token, "Redis refused its token")
