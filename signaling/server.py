"""The web server: pages, the rooms API, the signaling websocket, and the relay, in one aiohttp app.

``create_app`` is the factory; ``meetnow serve`` runs it. Everything the handlers share lives on one
:class:`MeetnowServer`, stored under the typed key :data:`SERVER`. The HTTP handlers themselves
(and that key) are in :mod:`signaling.http_handlers`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path

from aiohttp import WSCloseCode, web

from .aiortc_hooks import set_host_addresses
from .connection import RoomHub, knock_info
from .http_handlers import (
    MAX_API_BODY_BYTES,
    SERVER,
    create_room,
    guard_requests,
    healthz,
    landing_page,
    room_page,
    static_file,
    websocket,
)
from .limits import ServerLimits
from .logging_setup import SERVER_LIBRARY_LOGGERS, restrain
from .metrics import ServerMetrics, parse_listen_address, start_metrics_listener
from .protocol import (
    IceServerInfo,
    KnockMessage,
    KnockResolvedMessage,
    RoomInfo,
    RoomUpdatedMessage,
)
from .redis_proxy import SignalingForwarder, forward_between_nodes
from .redis_rooms import SharedRoomService
from .relay import Relay, RelayBackend, RelayConfig
from .room_store import RoomStore
from .rooms import Participant, Room, RoomLimits, RoomService
from .settings import Settings
from .sqlite_store import SqliteRoomStore, default_data_dir
from .static_assets import StaticAssets
from .tasks import spawn
from .web_guard import (
    MeetnowApplication,
    RedactedServerLog,
    SiteNames,
    security_headers_on_prepare,
    static_files,
)
from .workers import WorkerPool, default_worker_count

__all__ = ["SERVER", "MeetnowServer", "create_app"]

logger = logging.getLogger(__name__)


def web_client_dir() -> Path:
    return Path(str(resources.files("web_client")))


class MeetnowServer:
    """Shared state of the web server."""

    def __init__(self, settings: Settings, rooms: RoomService) -> None:
        self.settings = settings
        """The configuration it was started with."""
        self.rooms = rooms
        """The room service."""
        config = RelayConfig(
            ice_servers=tuple(settings.ice_servers),
            public_address=settings.ice_public_address,
            port_range=settings.ice_port_range,
            on_media_connected=self._media_connected,
        )
        workers = settings.relay_workers
        if workers is None:
            workers = default_worker_count()
        self.relay: RelayBackend
        """Where the peer connections live: this process, or relay worker processes."""
        if workers == 0:
            self.relay = Relay(config)
        else:
            self.relay = WorkerPool(
                workers,
                config,
                settings.ice_host_addresses,
                on_worker_lost=self._worker_lost,
                on_media_connected=self._media_connected,
                log_format=settings.log_format,
            )
        self.hub = RoomHub()
        """Open websockets by room."""
        self.relay.set_speakers_listener(self.hub.speakers_listener(rooms.get_room))
        self.limits = ServerLimits.from_settings(settings)
        """Rate limits (room creation, unknown-id lookups)."""
        self.open_websockets: Counter[str] = Counter()
        """Open websockets per client address (``MEETNOW_LIMIT_WEBSOCKETS_PER_IP``)."""
        self.static_dir = web_client_dir()
        self.static_files = static_files(self.static_dir)
        """The only files ``/static/`` serves, by relative path (taken once, at start-up)."""
        self.static_assets = StaticAssets(self.static_files)
        """Those files, read and gzip-compressed at start-up."""
        pool = self.relay if isinstance(self.relay, WorkerPool) else None
        self.metrics = ServerMetrics(rooms, pool)
        """What the metrics listener (``MEETNOW_METRICS_LISTEN``) serves."""
        self.site = SiteNames(settings)
        """The ``Host`` names and ``Origin``s this server answers to."""
        self._pages: dict[str, bytes] = {}
        self.forwarder: SignalingForwarder | None = None
        """On Redis: carries websockets of rooms held by another node there (redis_proxy.py)."""
        rooms.add_listener(self)

    def room_url(self, room_id: str) -> str:
        return f"{self.settings.base_url()}/r/{room_id}"

    def page(self, name: str) -> bytes:
        """A page, its ``/static/`` links pointing at this release's immutable URLs."""
        if name not in self._pages:
            raw = (self.static_dir / name).read_bytes()
            self._pages[name] = self.static_assets.versioned_page(raw)
        return self._pages[name]

    def _media_connected(self, seconds: float) -> None:
        self.metrics.observe_join_to_media(seconds)

    def health_problems(self) -> list[str]:
        """Why this server cannot hold calls right now (``/healthz``); empty when it can."""
        if isinstance(self.rooms, SharedRoomService) and self.rooms.draining:
            return ["stopping: its calls are moving to other nodes"]  # load balancers look away
        if isinstance(self.relay, WorkerPool):
            return self.relay.down_reasons()
        return []

    def origin_allowed(self, request: web.Request) -> bool:
        """No ``Origin`` (not a browser), our own, or a configured one (never one made from the
        request's own ``Host``, which a DNS-rebinding page chooses). Browsers always send it:
        a foreign one means another site is using its visitors' browsers against us."""
        return self.site.origin_allowed(request.headers.get("Origin"))

    async def _worker_lost(self, room_ids: set[str]) -> None:
        # The media of these rooms is gone: close their sockets so the clients reconnect and
        # get new peer connections on a live worker.
        for room_id in room_ids:
            for connection in self.hub.connections(room_id):
                await connection.close(WSCloseCode.INTERNAL_ERROR, b"relay restarted")

    async def evict(self, room_id: str, participant_id: str) -> None:
        connection = self.hub.get(room_id, participant_id)
        if connection is not None:
            await connection.evict()

    def room_info(self, room: Room) -> RoomInfo:
        return RoomInfo(
            id=room.id,
            topic=room.topic,
            url=self.room_url(room.id),
            max_participants=room.max_participants,
            locked=room.locked,
            lobby=room.lobby,
        )

    def ice_servers_for(self, participant_id: str) -> list[IceServerInfo]:
        """The ICE servers an admitted participant gets: the configured ones, plus short-lived
        TURN credentials of its own when a TURN secret is set (coturn ``use-auth-secret``)."""
        servers = [IceServerInfo(**s.model_dump()) for s in self.settings.ice_servers]
        secret = self.settings.turn_secret
        if self.settings.turn_urls and secret is not None:
            username, credential = turn_credentials(
                secret.get_secret_value(),
                participant_id,
                self.rooms.now() + self.settings.turn_ttl_seconds,
            )
            servers.append(
                IceServerInfo(
                    urls=self.settings.turn_urls, username=username, credential=credential
                )
            )
        return servers

    def client_ip(self, request: web.Request) -> str:
        if self.settings.trust_forwarded_for:
            # The proxy appends the address it saw on the right; anything left of it came from
            # the client and can be forged.
            headers = request.headers.getall("X-Forwarded-For", [])
            if headers:
                last = headers[-1].split(",")[-1].strip()
                if last:
                    return last
        return request.remote or "unknown"

    # RoomEvents: the room service tells the websockets (and, separately, the chat adapters).
    def participant_joined(self, room: Room, participant: Participant) -> None:
        pass

    def participant_left(self, room: Room, participant: Participant) -> None:
        pass

    def room_closed(self, room: Room, reason: str) -> None:
        # Sockets still on the page before ``join`` are told too, and closed: their room is gone.
        for connection in [*self.hub.connections(room.id), *self.hub.unjoined(room.id)]:
            spawn(connection.room_closed(reason))

    def participant_waiting(self, room: Room, participant: Participant) -> None:
        spawn(self.hub.to_hosts(room, KnockMessage(participant=knock_info(participant))))

    def waiting_resolved(self, room: Room, participant: Participant, admitted: bool) -> None:
        resolved = KnockResolvedMessage(participant_id=participant.id, admitted=admitted)
        spawn(self.hub.to_hosts(room, resolved))
        connection = self.hub.get(room.id, participant.id)
        if connection is None or connection.in_call:
            return
        if admitted:
            spawn(connection.admitted())
        elif room.locked and participant.session not in room.banned_sessions:
            spawn(connection.locked_out())  # the host locked the room while they waited
        else:
            spawn(connection.denied())

    def room_changed(self, room: Room) -> None:
        update = RoomUpdatedMessage(room=self.room_info(room))
        spawn(self.hub.broadcast(room.id, update, exclude=None))


def turn_credentials(secret: str, user: str, expires_at: float) -> tuple[str, str]:
    """TURN REST credentials (coturn ``use-auth-secret``): ``expiry:user`` and
    ``base64(HMAC-SHA1(secret, username))``."""
    username = f"{int(expires_at)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


async def _sweeper(server: MeetnowServer, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        server.rooms.sweep()


async def _background(app: web.Application) -> AsyncIterator[None]:
    server = app[SERVER]
    await server.rooms.open()  # before anyone is served: links, hosts and tombstones are back
    set_host_addresses(server.settings.ice_host_addresses)
    if isinstance(server.relay, WorkerPool):
        await server.relay.start()
    metrics_runner = await _start_metrics(server)
    interval = max(0.5, min(30.0, server.settings.room_empty_grace_seconds / 2))
    task = asyncio.ensure_future(_sweeper(server, interval))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    await server.rooms.close()


async def _start_metrics(server: MeetnowServer) -> web.AppRunner | None:
    """The metrics listener, on its own address (``MEETNOW_METRICS_LISTEN``; empty: none)."""
    address = parse_listen_address(server.settings.metrics_listen)
    if address is None:
        return None
    explicit = "metrics_listen" in server.settings.model_fields_set
    return await start_metrics_listener(server.metrics, *address, explicit=explicit)


async def _on_shutdown(app: web.Application) -> None:
    server = app[SERVER]
    if isinstance(server.rooms, SharedRoomService):
        await server.rooms.drain()  # one node of several: its rooms go on elsewhere
    if server.rooms.durable:
        await _restart_pages(server)
        return
    for room in server.rooms.rooms():
        for connection in [*server.hub.connections(room.id), *server.hub.unjoined(room.id)]:
            await connection.room_closed("server_shutdown")
    # Rooms live in memory: they end with the process, and chat cards say so (the adapters
    # finish their card updates in their own cleanup, which runs after this).
    server.rooms.close_all("server_shutdown")
    await server.relay.close()


async def _restart_pages(server: MeetnowServer) -> None:
    """Stopping with a durable store: the rooms go on after the restart, so nobody is told the
    meeting is over. Each websocket closes with 1012 "service restart" and its page reconnects
    with backoff (joining again by its session, straight back in). What the store holds is
    written first and no later change is: these closes are not people leaving."""
    await server.rooms.detach()
    for room in server.rooms.rooms():
        for connection in [*server.hub.connections(room.id), *server.hub.unjoined(room.id)]:
            await connection.close(WSCloseCode.SERVICE_RESTART, b"server restarting")
    if server.forwarder is not None:
        await server.forwarder.drain()
    await server.relay.close()


def open_store(settings: Settings) -> RoomStore | None:
    """The room store the settings choose (opened now, so a bad directory or database stops
    start-up with :class:`~signaling.room_store.StoreError`); None: rooms in memory only."""
    if settings.store == "memory":
        return None
    return SqliteRoomStore(settings.data_dir or default_data_dir())


def room_limits(settings: Settings) -> RoomLimits:
    return RoomLimits(
        max_participants=settings.room_max_participants,
        unused_ttl_seconds=settings.room_unused_ttl_seconds,
        empty_grace_seconds=settings.room_empty_grace_seconds,
        max_rooms=settings.max_rooms,
        topic_max_length=settings.topic_max_length,
        name_max_length=settings.name_max_length,
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    rooms: RoomService | None = None,
) -> web.Application:
    """Build the meetnow web application."""
    settings = settings or Settings()
    if rooms is None and settings.redis_url is not None:  # one node of several (redis_rooms.py)
        url = settings.redis_url.get_secret_value()
        rooms = SharedRoomService.from_url(url, room_limits(settings), clock=clock)
    rooms = rooms or RoomService(room_limits(settings), clock=clock, store=open_store(settings))
    server = MeetnowServer(settings, rooms)
    if isinstance(rooms, SharedRoomService):
        rooms.share_limits(server.limits)
        server.forwarder = forward_between_nodes(server, rooms)
    app = MeetnowApplication(
        middlewares=[guard_requests],
        client_max_size=MAX_API_BODY_BYTES,
        # aiohttp's low-level server logs each malformed request with the client's address and
        # its raw bytes: a redacted log instead. No access log (paths carry room ids; a reverse
        # proxy keeps its own).
        handler_args={
            "logger": RedactedServerLog(logging.getLogger("signaling.http")),
            "access_log": None,
        },
    )
    app.on_response_prepare.append(security_headers_on_prepare)
    restrain(SERVER_LIBRARY_LOGGERS)
    app[SERVER] = server
    app.router.add_get("/", landing_page)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/r/{room_id}", room_page)
    app.router.add_get("/ws/{room_id}", websocket)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/static/{path:.+}", static_file)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_on_shutdown)
    # Chat platforms are installed by the composition root (meetnow.wiring), after this.
    return app
