"""The node bus on a real ``redis-server``: messages reach the node they are sent to, in order,
and after Redis is killed and started again the bus subscribes again by itself (redis-py's
asyncio pub/sub does not) and tells the node to resync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from signaling.redis_bus import NodeBus
from signaling.redis_store import connect

from ..support.redis_server import RedisServer, running_redis


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.02)


async def test_messages_arrive_in_order_and_the_bus_resubscribes_after_redis_returns(
    tmp_path: Path,
) -> None:
    with running_redis(tmp_path) as redis_server:
        received: list[dict[str, object]] = []
        resyncs: list[float] = []
        receiver = NodeBus(
            connect(redis_server.url),
            "node-b",
            on_message=received.append,
            on_resubscribed=lambda: resyncs.append(time.monotonic()),
        )
        sender = NodeBus(connect(redis_server.url), "node-a", on_message=lambda _: None)
        receiver.start()
        try:
            await asyncio.wait_for(receiver.subscribed.wait(), 30)
            for index in range(20):
                assert await sender.send("node-b", {"op": "msg", "n": index})
            await wait_until(lambda: len(received) == 20, "20 messages")
            assert [m["n"] for m in received] == list(range(20))
            assert not await sender.send("node-nobody", {"op": "msg"})  # nobody listens there

            restart_redis(redis_server)
            await wait_until(lambda: receiver.subscriptions == 2, "a second subscription")
            assert len(resyncs) == 1
            await wait_until(receiver.subscribed.is_set, "subscribed again")
            assert await sender.send("node-b", {"op": "msg", "n": 20})
            await wait_until(lambda: len(received) == 21, "a message after Redis came back")
        finally:
            await receiver.stop()
            await receiver.client.aclose()
            await sender.client.aclose()


async def test_the_test_a_plain_redis_py_subscription_stays_deaf_after_redis_returns(
    tmp_path: Path,
) -> None:
    """What the bus works around: redis-py's own pub/sub, subscribed once, never hears a message
    sent after Redis restarted (so the check above can fail)."""
    with running_redis(tmp_path) as redis_server:
        listener = connect(redis_server.url)
        pubsub = listener.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe("plain")
        restart_redis(redis_server)
        sender = connect(redis_server.url)
        try:
            assert await sender.publish("plain", "hello") == 0  # nobody subscribed any more
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await listener.aclose()
            await sender.aclose()


def restart_redis(redis_server: RedisServer) -> None:
    redis_server.stop()  # SIGKILL, as a crash
    redis_server.start()  # the same port, empty
