"""A message bus between nodes on Redis pub/sub: each node listens on a channel of its own
(``{prefix}bus:{node id}``) and any node can send it JSON messages.

redis-py's asyncio pub/sub neither reconnects nor resubscribes by itself, its ``get_message()``
spins at its default ``timeout=0``, and an idle subscription can be dropped silently: this loop
waits with a timeout, pings the subscribed connection every :data:`KEEPALIVE_SECONDS`, and on any
Redis error subscribes again on a new connection (backing off up to :data:`MAX_BACKOFF_SECONDS`),
calling ``on_resubscribed`` so the node can resync what messages may have been lost meanwhile
(forwarding closes the connections it carried: their pages reconnect).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .redis_store import DEFAULT_PREFIX

__all__ = ["KEEPALIVE_SECONDS", "MAX_BACKOFF_SECONDS", "NodeBus"]

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0
"""A subscription quiet this long is pinged (a dead connection shows up as an error)."""
MAX_BACKOFF_SECONDS = 2.0
WAIT_SECONDS = 1.0
"""How long one ``get_message`` waits (never 0: that spins)."""

Envelope = dict[str, Any]


def without_retries(client: aioredis.Redis) -> aioredis.Redis:
    """A client to the same Redis whose commands never retry. A retrying client's pub/sub
    reconnects and resubscribes silently: the messages lost meanwhile would go unnoticed."""
    pool = client.connection_pool
    options = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0), "retry_on_error": []}
    return aioredis.Redis(
        connection_pool=aioredis.ConnectionPool(connection_class=pool.connection_class, **options)
    )


class NodeBus:
    """This node's inbox, and sending to other nodes' inboxes."""

    def __init__(
        self,
        client: aioredis.Redis,
        node_id: str,
        *,
        on_message: Callable[[Envelope], None],
        on_resubscribed: Callable[[], None] = lambda: None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.client = client
        """Sends (retried once Redis is back)."""
        self._listener = without_retries(client)
        """Listens: every error surfaces, so a resubscription resyncs."""
        self.node_id = node_id
        self.prefix = prefix
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self.subscribed = asyncio.Event()
        """Set while this node's inbox is subscribed."""
        self.subscriptions = 0
        """How many times it subscribed (1 at start, one more after each reconnect)."""
        self._task: asyncio.Task[None] | None = None

    def channel(self, node_id: str) -> str:
        return f"{self.prefix}bus:{node_id}"

    async def send(self, node_id: str, envelope: Envelope) -> bool:
        """Publish to ``node_id``'s inbox; False if nobody listens there (the node is gone)."""
        receivers = await self.client.publish(self.channel(node_id), json.dumps(envelope))
        return bool(receivers)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.subscribed.clear()
        await self._listener.aclose()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen()
            except RedisError as error:
                if self.subscribed.is_set():
                    logger.warning("node bus lost its subscription: %s", type(error).__name__)
                self.subscribed.clear()
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
            else:
                backoff = 0.1

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel(self.node_id))
            self.subscriptions += 1
            self.subscribed.set()
            if self.subscriptions > 1:
                logger.info("node bus subscribed again")
                self._on_resubscribed()
            quiet_since = loop.time()
            while True:
                message = await pubsub.get_message(timeout=WAIT_SECONDS)
                if message is None:
                    if loop.time() - quiet_since > KEEPALIVE_SECONDS:
                        await pubsub.ping()
                        quiet_since = loop.time()
                    continue
                quiet_since = loop.time()
                if message.get("type") != "message":
                    continue  # a pong
                try:
                    envelope = json.loads(message["data"])
                except ValueError:
                    logger.warning("node bus dropped a message that is not JSON")
                    continue
                if isinstance(envelope, dict):
                    self._on_message(envelope)
        finally:
            self.subscribed.clear()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
