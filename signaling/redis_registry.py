"""Nodes and room claims on Redis (``MEETNOW_REDIS_URL``): which ``meetnow serve`` nodes are alive,
how loaded each is, and which node a room's call runs on.

Keys, under the store's prefix (``meetnow:``):

- ``node:{node id}``: a live node, as JSON (``load``: participants on it; ``started_at``), with a
  TTL of :data:`NODE_TTL_SECONDS`, written again every :data:`HEARTBEAT_SECONDS`: a node that
  dies (``kill -9``, a lost machine) is gone from the list within ``NODE_TTL_SECONDS``;
- ``claim:{room id}``: the id of the node whose room it is, set only if absent (``SET NX PX``)
  with the same TTL and renewed at each heartbeat by that node alone (a Lua compare-and-renew,
  never another node's claim): a dead node's claims expire within ``NODE_TTL_SECONDS`` too.

A heartbeat that finds this node's own key gone learns that Redis forgot it (Redis restarted
empty, or this node was away longer than the TTL): it claims its rooms again and calls
``on_forgotten``, where the node writes back the rooms Redis lost
(:mod:`signaling.redis_restore`).

Who claims: the node where the room's first participant arrives, unless it holds more than
:data:`LOAD_MARGIN` participants more than the least loaded live node: then it claims the room
for that node (``SET NX`` with that node's id) and forwards the participant there, and that node
takes the claim over when the forwarded websocket reaches it (an ``open`` that never comes lets
the claim expire with the TTL). Forwarding makes any node able to hold any room; the margin
keeps the first participant on the node a load balancer chose (no second hop) while loads are
about even, and a load published up to a heartbeat ago does not send every new room of a burst
to the same node before its load shows them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .redis_store import DEFAULT_PREFIX, RELEASE_IF_HOLDER, RENEW_IF_HOLDER, text_of

__all__ = ["HEARTBEAT_SECONDS", "LOAD_MARGIN", "NODE_TTL_SECONDS", "NodeRegistry", "new_node_id"]

logger = logging.getLogger(__name__)

NODE_TTL_SECONDS = 3.0
"""How long a node and its claims outlive its last heartbeat."""
HEARTBEAT_SECONDS = 1.0
"""How often a live node says so and renews its claims (a third of the TTL: two heartbeats may
be late or lost before anything expires)."""

LOAD_MARGIN = 2
"""A room's first participant stays on the node they reached unless it holds more than this many
participants more than the least loaded live node (whose room it then becomes)."""

CLAIM_HOLD_SECONDS = 30.0
"""A claim made for an arriving websocket is kept this long before anyone joins (the server's
default ``MEETNOW_WS_JOIN_TIMEOUT_SECONDS``)."""


def new_node_id() -> str:
    """A node's id for this run of the process (a restarted node is a new node)."""
    return secrets.token_hex(8)


class NodeRegistry:
    """This node's heartbeat and room claims. :meth:`start` runs the heartbeat; ``rooms_here``
    tells it which rooms have people on this node (their claims are kept, the others let go)
    and ``load`` how many participants it holds."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        load: Callable[[], int],
        rooms_here: Callable[[], Iterable[str]],
        node_id: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        ttl_seconds: float = NODE_TTL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        claim_hold_seconds: float = CLAIM_HOLD_SECONDS,
        on_forgotten: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.node_id = node_id or new_node_id()
        self.prefix = prefix
        self._load = load
        self._rooms_here = rooms_here
        self._ttl_ms = int(ttl_seconds * 1000)
        self._heartbeat_seconds = heartbeat_seconds
        self.claim_hold_seconds = claim_hold_seconds
        self._renew = client.register_script(RENEW_IF_HOLDER)
        self._release = client.register_script(RELEASE_IF_HOLDER)
        self.held: set[str] = set()
        """Rooms this node holds the claim of (as of the last claim or heartbeat)."""
        self.heartbeats = 0
        """Heartbeats that reached Redis (tests wait on it rather than on time)."""
        self.reachable = True
        """Whether the last heartbeat reached Redis."""
        self._on_forgotten = on_forgotten
        self._forgotten = False
        """A heartbeat found this node's key gone, and ``on_forgotten`` has not yet succeeded
        since (a Redis lost again halfway: the next heartbeat tries again)."""
        self._started_at = time.time()
        self._contested: set[str] = set()
        self._claimed_at: dict[str, float] = {}
        """When each claim was made: kept :data:`CLAIM_HOLD_SECONDS` even with nobody in the
        room yet (a websocket arrived; its ``join`` follows)."""
        self._task: asyncio.Task[None] | None = None

    def _node_key(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    def claim_key(self, room_id: str) -> str:
        return f"{self.prefix}claim:{room_id}"

    async def claim(self, room_id: str) -> str:
        """Claim ``room_id`` unless a live node holds it, for this node or, when this node is
        busier by more than :data:`LOAD_MARGIN`, for the least loaded one; returns the holder's
        id (this node's when it is, or becomes, the room's node)."""
        holder = await self.holder(room_id)
        if holder is None:
            holder = await self._take(room_id, await self.least_loaded())
        elif holder == self.node_id:
            self.held.add(room_id)
        if holder == self.node_id:
            self._claimed_at.setdefault(room_id, time.monotonic())
        return holder

    async def least_loaded(self) -> str:
        """The node a new room goes to: this one, unless it holds more than
        :data:`LOAD_MARGIN` participants more than the least loaded other live node."""
        others = await self.live_nodes()
        others.pop(self.node_id, None)
        if not others:
            return self.node_id
        node, load = min(others.items(), key=lambda item: (item[1], item[0]))
        return node if self._load() - load > LOAD_MARGIN else self.node_id

    async def _take(self, room_id: str, for_node: str | None = None) -> str:
        key, claimant = self.claim_key(room_id), for_node or self.node_id
        if await self.client.set(key, claimant, nx=True, px=self._ttl_ms):
            if claimant == self.node_id:
                self.held.add(room_id)
            return claimant
        holder = await self.client.get(key)
        if holder is None:  # expired between the two calls: try once more
            return await self._take(room_id, for_node)
        holder_id = text_of(holder)
        if holder_id == self.node_id:
            self.held.add(room_id)
        return holder_id

    async def holder(self, room_id: str) -> str | None:
        """The node whose room ``room_id`` is, or None if no live node claims it."""
        holder = await self.client.get(self.claim_key(room_id))
        return None if holder is None else text_of(holder)

    async def release(self, room_id: str) -> None:
        """Let go of ``room_id`` (nobody is in it here any more), if it is still ours."""
        self.held.discard(room_id)
        self._claimed_at.pop(room_id, None)
        await self._release(keys=[self.claim_key(room_id)], args=[self.node_id])

    async def is_alive(self, node_id: str) -> bool:
        """Whether ``node_id``'s heartbeat is current (it has not died or stopped)."""
        return bool(await self.client.exists(self._node_key(node_id)))

    async def live_nodes(self) -> dict[str, int]:
        """Every live node's id and load (participants), this one included."""
        keys = [text_of(k) async for k in self.client.scan_iter(match=self._node_key("*"))]
        if not keys:
            return {}
        values = await self.client.mget(keys)
        base = len(self._node_key(""))
        return {
            key[base:]: int(json.loads(text_of(value))["load"])
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    async def beat(self) -> None:
        """One heartbeat: say this node is alive with its load, renew the claims of the rooms
        with people here, claim those that lost theirs while Redis was away (unless another
        node took them), and let go of the rooms nobody is in here any more. If this node's
        key was gone (Redis forgot it), ``on_forgotten`` follows."""
        now = time.monotonic()
        self._claimed_at = {
            room_id: at
            for room_id, at in self._claimed_at.items()
            if now - at < self.claim_hold_seconds and room_id in self.held
        }
        here = set(self._rooms_here()) | set(self._claimed_at)
        status = json.dumps({"load": self._load(), "started_at": self._started_at})
        known = await self.client.set(
            self._node_key(self.node_id), status, px=self._ttl_ms, get=True
        )
        if known is None:
            self._forgotten = True
        for room_id in sorted(self.held - here):
            await self.release(room_id)
        for room_id in sorted(here):
            key = self.claim_key(room_id)
            if await self._renew(keys=[key], args=[self.node_id, self._ttl_ms]):
                self.held.add(room_id)
            elif await self._take(room_id) != self.node_id and room_id not in self._contested:
                self._contested.add(room_id)  # said once per room, not at every heartbeat
                logger.warning("a room with people on this node is claimed by another node")
        self._contested &= here
        if self._forgotten and self._on_forgotten is not None:
            await self._on_forgotten()
        self._forgotten = False
        self.heartbeats += 1

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
                if not self.reachable:
                    logger.info("Redis reachable again: node heartbeat resumed")
                self.reachable = True
            except RedisError as error:
                if self.reachable:
                    logger.warning("node heartbeat failed (Redis): %s", type(error).__name__)
                self.reachable = False
            await asyncio.sleep(self._heartbeat_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the heartbeat and let go of this node and its claims (a clean stop: other nodes
        need not wait for the TTL)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            for room_id in sorted(self.held):
                await self.release(room_id)
            await self.client.delete(self._node_key(self.node_id))
        except RedisError as error:
            logger.warning("could not unregister the node (Redis): %s", type(error).__name__)
