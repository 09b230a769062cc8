"""A real meetnow server whose clock moves only when the test moves it, and a raw websocket that
can tell when the server has read everything it sent.

Each websocket's message limiter reads the event loop's clock (``signaling/connection.py``: its
``TokenBucket`` and its window of refusals), so the server runs here in a thread of its own, on an
event loop whose ``time()`` is a :class:`FakeClock`: between two steps no token comes back, and
the numbers a test counts are exact. The test's own loop keeps real time, so its timeouts work.

The barrier is a websocket-level ping: aiohttp answers it inside ``receive()``, in order with the
text messages and without passing it to our code (so the limiter never sees it), hence its pong
means every message sent before the ping has gone through the limiter and been handled (see
:meth:`RawSocket.barrier` for what the server sends from tasks of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from signaling.server import create_app

from ..conftest import FakeClock, test_settings


class SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is a :class:`FakeClock` (``time()`` is asyncio's documented
    clock of a loop: timers, ``call_later`` and the server's limiters all read it)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def time(self) -> float:
        return self.clock()


@dataclass
class SteppedServer:
    """The server's address and the clock its loop runs on."""

    base_url: str
    loop: SteppedLoop

    def advance(self, seconds: float) -> None:
        """Move the server's clock; call only while the server is idle (after a barrier)."""
        self.loop.clock.advance(seconds)
        # Wake the loop, so timers that are now due run without waiting for a socket.
        self.loop.call_soon_threadsafe(lambda: None)


@contextlib.asynccontextmanager
async def stepped_server(**overrides: object) -> AsyncIterator[SteppedServer]:
    """``create_app`` on a loopback port, in a thread whose loop runs on a stepped clock.

    Close every client before leaving: the server's clean-up waits for their close handshakes."""
    settings = test_settings(
        # Nothing but the test moves this clock: no heartbeat or join deadline in the way.
        ws_heartbeat_seconds=3600,
        ws_join_timeout_seconds=3600,
        **overrides,
    )
    # A clock far from zero, as a real monotonic clock is (the limiter starts its window at 0).
    loop = SteppedLoop(FakeClock(1_000_000.0))
    runner_holder: list[web.AppRunner] = []
    started = threading.Event()

    async def start() -> None:
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        runner_holder.append(runner)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="stepped-clock-server", daemon=True)
    thread.start()
    await asyncio.to_thread(started.wait, 30)
    assert runner_holder, "the stepped-clock server did not start"
    try:
        yield SteppedServer(f"http://{settings.host}:{settings.port}", loop)
    finally:
        cleanup = asyncio.run_coroutine_threadsafe(runner_holder[0].cleanup(), loop)
        await asyncio.wait_for(asyncio.wrap_future(cleanup), 30)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 30)
        loop.close()


@dataclass
class RawSocket:
    """One websocket, read only at barriers; every text message kept, in order."""

    ws: aiohttp.ClientWebSocketResponse
    http: aiohttp.ClientSession
    received: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    """Set once the server has closed the socket."""

    @classmethod
    async def open(cls, base_url: str, room_id: str) -> RawSocket:
        http = aiohttp.ClientSession()
        url = base_url.replace("http://", "ws://") + "/ws/" + room_id
        # autoping off: the barrier's pong must reach us (aiohttp swallows it otherwise).
        ws = await http.ws_connect(url, autoping=False)
        return cls(ws, http)

    async def join(self, name: str) -> dict[str, Any]:
        """Join the call (no media) and return ``joined``."""
        session = secrets.token_urlsafe(18)
        await self.send({"type": "join", "version": 1, "name": name, "session": session})
        await self.barrier()
        joined = [m for m in self.received if m["type"] == "joined"]
        assert len(joined) == 1, self.received
        return joined[0]

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_pings(self, count: int) -> None:
        for _ in range(count):
            await self.ws.send_str('{"type": "ping"}')

    async def barrier(self, timeout: float = 10.0) -> None:
        """Wait until the server has handled every message sent before, and whatever it sends
        from the tasks it started meanwhile (the ``rate_limited`` answer and the 1008 close are
        sent that way) has arrived.

        Two pings at the websocket level: the first pong comes once every earlier message has
        been handled; a task started meanwhile is queued before the server's loop waits for the
        next socket read, so it has run (and written) before the second ping can be read."""
        for _ in range(2):
            if self.close_code is not None:
                return
            await self._ping_pong(timeout)

    async def _ping_pong(self, timeout: float) -> None:
        token = secrets.token_bytes(8)
        await self.ws.ping(token)
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type == WSMsgType.TEXT:
                    self.received.append(json.loads(message.data))
                elif message.type == WSMsgType.PONG and message.data == token:
                    return
                elif message.type == WSMsgType.PING:
                    await self.ws.pong(message.data)
                elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    self.close_code = self.ws.close_code
                    return

    def count(self, kind: str) -> int:
        return sum(1 for message in self.received if message["type"] == kind)

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()
