"""Signaling forwarded between nodes (``MEETNOW_REDIS_URL``): a websocket that lands on a node
that does not hold its room's claim is carried over the node bus (:mod:`signaling.redis_bus`) to
the node that does, so the room's logic and its relay (the peer connections, hence the ICE
addresses in the SDP) stay on one node and media goes straight there. Nothing of the media
crosses nodes: only the signaling messages, each way, in order.

Messages on the bus, all with ``conn`` (a random id of the forwarded connection):
``open`` (edge to room node: ``from``, ``room``, ``ip``), ``msg`` (either way: ``data``, one text
frame), ``close`` (either way: ``code``); ``knock`` and ``knock_answer`` (a lobby's Admit / Deny
asked of the room's node) go to :mod:`signaling.redis_knock`. If the room node cannot be
reached, or the bus loses its subscription (messages may be lost), the edge closes the page's
websocket with 1012 "service restart" and the page reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from redis.exceptions import RedisError

from .connection import ClientConnection
from .errors import TemporarilyUnavailable
from .redis_bus import Envelope, NodeBus
from .redis_knock import KnockRelay
from .redis_registry import HEARTBEAT_SECONDS
from .redis_rooms import SharedRoomService
from .tasks import spawn

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["DRAIN_SECONDS", "ForwardedSocket", "SignalingForwarder", "forward_between_nodes"]

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 3.0
"""How long a draining node waits for its closes to reach the other nodes over the bus."""


class ForwardedSocket:
    """The room node's end of a websocket held by another node: what a
    :class:`~signaling.connection.ClientConnection` reads and writes, carried over the bus."""

    def __init__(self, bus: NodeBus, edge: str, conn: str) -> None:
        self._bus, self._edge, self._conn = bus, edge, conn
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._outbox: asyncio.Queue[Envelope] = asyncio.Queue()
        self.closed = False
        self._sender = spawn(self._send_in_order(), what="forwarded socket sender")

    def feed(self, text: str) -> None:
        """A text frame the page sent (through the edge node)."""
        if not self.closed:
            self._inbox.put_nowait(text)

    def end(self) -> None:
        """The page's websocket closed at the edge (or the bus lost messages): nothing more
        is read or sent."""
        if self.closed:
            return
        self.closed = True
        self._inbox.put_nowait(None)
        self._outbox.put_nowait({"op": "stop"})

    def __aiter__(self) -> ForwardedSocket:
        return self

    async def __anext__(self) -> WSMessage:
        text = await self._inbox.get()
        if text is None:
            self.closed = True
            raise StopAsyncIteration
        return WSMessage(WSMsgType.TEXT, text, None)

    async def send_str(self, data: str) -> None:
        if self.closed:
            raise ConnectionError("forwarded websocket closed")
        self._outbox.put_nowait({"op": "msg", "conn": self._conn, "data": data})

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        if self.closed:
            return False
        self.closed = True
        self._inbox.put_nowait(None)
        self._outbox.put_nowait({"op": "close", "conn": self._conn, "code": int(code)})
        return True

    async def sent(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until everything queued has been published."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._sender), timeout)

    async def _send_in_order(self) -> None:
        # One publisher per connection: concurrent publishes on a pool could overtake each other.
        while True:
            envelope = await self._outbox.get()
            if envelope["op"] == "stop":
                return
            try:
                await self._bus.send(self._edge, envelope)
            except RedisError as error:
                logger.warning("forwarding to the edge node failed: %s", type(error).__name__)
            if envelope["op"] == "close":
                return


class SignalingForwarder:
    """Both ends of forwarding on one node: the edge (a page's websocket here, its room's node
    elsewhere) and the room node (a page's websocket elsewhere, its room here)."""

    def __init__(
        self,
        server: MeetnowServer,
        node_alive: Callable[[str], Awaitable[bool]],
        watch_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._server = server
        self._node_alive = node_alive
        self._watch_seconds = watch_seconds
        self._edges: dict[str, asyncio.Queue[Envelope]] = {}
        """Forwarded connections whose page is on this node, by ``conn``: what the room node
        sends them."""
        self._rooms_side: dict[str, ForwardedSocket] = {}
        """Forwarded connections whose room is on this node, by ``conn``."""
        self._no_edges = asyncio.Event()
        """Set when the last edge closed (:meth:`drain` waits for it)."""
        self.bus: NodeBus | None = None
        self.knocks: KnockRelay | None = None
        """Lobby answers between nodes, carried on the same bus."""

    def attach(self, bus: NodeBus) -> None:
        self.bus = bus

    # Edge: the page's websocket is here.
    async def forward(
        self, ws: web.WebSocketResponse, holder: str, room_id: str, client_ip: str
    ) -> None:
        """Carry ``ws`` to the node ``holder`` until either side closes."""
        assert self.bus is not None
        bus, conn = self.bus, secrets.token_hex(12)
        replies: asyncio.Queue[Envelope] = asyncio.Queue()
        self._edges[conn] = replies
        opened = {"op": "open", "conn": conn, "from": bus.node_id, "room": room_id}
        try:
            if not await bus.send(holder, {**opened, "ip": client_ip}):
                await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"room node away")
                return
            pump = spawn(self._to_page(ws, replies), what="forwarded replies")
            watch = spawn(self._watch(holder, ws), what="room node watch")
            try:
                async for message in ws:
                    if message.type == WSMsgType.TEXT:
                        await bus.send(holder, {"op": "msg", "conn": conn, "data": message.data})
                    elif message.type == WSMsgType.BINARY:
                        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"binary")
            finally:
                pump.cancel()
                watch.cancel()
                await asyncio.gather(pump, watch, return_exceptions=True)
                # The room node ignores it if it closed first.
                await bus.send(holder, {"op": "close", "conn": conn, "code": 1000})
        except RedisError as error:
            logger.warning("forwarding to the room node failed: %s", type(error).__name__)
            await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"room node away")
        finally:
            self._edges.pop(conn, None)
            if not self._edges:
                self._no_edges.set()

    async def _watch(self, holder: str, ws: web.WebSocketResponse) -> None:
        """Close the page's websocket (1012: it reconnects) once the room's node is gone from
        the registry (dead: its heartbeat stopped), so the page finds the room again through a
        live node, which claims it."""
        while not ws.closed:
            await asyncio.sleep(self._watch_seconds)
            try:
                alive = await self._node_alive(holder)
            except RedisError:
                continue  # Redis away: the node may be fine; the bus resyncs when it is back
            if not alive:
                await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"room node gone")
                return

    async def _to_page(self, ws: web.WebSocketResponse, replies: asyncio.Queue[Envelope]) -> None:
        while True:
            envelope = await replies.get()
            if envelope["op"] == "msg" and not ws.closed:
                try:
                    await ws.send_str(str(envelope["data"]))
                except (ConnectionError, RuntimeError):
                    pass
            elif envelope["op"] == "close":
                await ws.close(code=int(envelope.get("code", 1000)))
                return

    # Room node: the room is here.
    def _open(self, envelope: Envelope) -> None:
        assert self.bus is not None
        conn, edge = str(envelope["conn"]), str(envelope["from"])
        socket = ForwardedSocket(self.bus, edge, conn)
        self._rooms_side[conn] = socket
        spawn(self._serve(socket, str(envelope["room"]), str(envelope["ip"])), what="forwarded")

    async def _serve(self, socket: ForwardedSocket, room_id: str, client_ip: str) -> None:
        server = self._server
        try:
            await server.rooms.fetch(room_id)
            room = server.rooms.get_room(room_id)
            if room is None:
                await socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"room not here")
                return
            try:
                await server.rooms.claim(room_id)
            except TemporarilyUnavailable:  # this node is draining: the page goes elsewhere
                await socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"node stopping")
                return
            # The connection reads and writes it as it would a websocket (the same methods).
            connection = ClientConnection(
                server, room, cast(web.WebSocketResponse, socket), client_ip=client_ip
            )
            await connection.run(server.settings.ws_join_timeout_seconds)
        finally:
            await socket.close()
            self._rooms_side = {k: v for k, v in self._rooms_side.items() if v is not socket}

    # Both.
    def on_message(self, envelope: Envelope) -> None:
        """A message from another node (called by the bus, in the order they were published)."""
        op, conn = envelope.get("op"), str(envelope.get("conn"))
        if op in ("knock", "knock_answer"):
            if self.knocks is not None:
                self.knocks.on_message(envelope)
        elif op == "open" and conn not in self._rooms_side:
            self._open(envelope)
        elif conn in self._edges:  # for a page on this node
            self._edges[conn].put_nowait(envelope)
        elif conn in self._rooms_side:  # from a page on another node
            socket = self._rooms_side[conn]
            if op == "msg":
                socket.feed(str(envelope["data"]))
            elif op == "close":
                socket.end()

    async def drain(self) -> None:
        """This node is stopping (its claims already let go): close every forwarded connection
        with 1012 "service restart", both the pages on this node whose room is elsewhere and
        the pages elsewhere whose room is here, and wait until those closes are on the bus, so
        each page reconnects (to a live node, which claims its room) rather than seeing its
        websocket just drop."""
        for replies in self._edges.values():
            replies.put_nowait({"op": "close", "code": int(WSCloseCode.SERVICE_RESTART)})
        sockets = list(self._rooms_side.values())
        for socket in sockets:
            await socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"node stopping")
        await asyncio.gather(*(socket.sent(DRAIN_SECONDS) for socket in sockets))
        if self._edges:  # each edge tells its room node it closed, then leaves
            self._no_edges.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._no_edges.wait(), DRAIN_SECONDS)

    def on_resubscribed(self) -> None:
        """Messages may have been lost while the bus was away: close every forwarded connection
        (pages reconnect; their sessions bring them straight back)."""
        for replies in self._edges.values():
            replies.put_nowait({"op": "close", "code": int(WSCloseCode.SERVICE_RESTART)})
        for socket in list(self._rooms_side.values()):
            socket.end()


def forward_between_nodes(server: MeetnowServer, rooms: SharedRoomService) -> SignalingForwarder:
    """The forwarder of this node, listening on its bus (started with the room service), which
    also carries lobby answers between nodes (:mod:`signaling.redis_knock`)."""
    forwarder = SignalingForwarder(server, rooms.registry.is_alive)
    bus = rooms.listen(forwarder.on_message, forwarder.on_resubscribed)
    forwarder.attach(bus)
    rooms.knocks = forwarder.knocks = KnockRelay(rooms, bus)
    return forwarder
