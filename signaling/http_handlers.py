"""The web server's HTTP handlers: the pages, the rooms API, static files, ``/healthz`` and the
signaling websocket, with the request guard every request passes first.

Each handler finds the shared :class:`~signaling.server.MeetnowServer` under :data:`SERVER` on
the app. The key lives here, not in ``server.py``, so that the handlers need the server's class
for types only: ``server.py`` imports this module, never the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .connection import ClientConnection
from .errors import RateLimited, TemporarilyUnavailable, TooManyRooms
from .rooms import Room, iso_utc

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = [
    "MAX_API_BODY_BYTES",
    "SERVER",
    "create_room",
    "guard_requests",
    "healthz",
    "landing_page",
    "room_page",
    "static_file",
    "websocket",
]

MAX_API_BODY_BYTES = 16 * 1024

SERVER: web.AppKey[MeetnowServer] = web.AppKey("server")
"""Where the app keeps its :class:`~signaling.server.MeetnowServer`."""


def not_found(server: MeetnowServer) -> web.Response:
    """The one 404 for every unknown or malformed room id (and any unknown path)."""
    return _page(server, 404, "404.html")


def gone(server: MeetnowServer) -> web.Response:
    """The one 410 for a room that ended or expired: its link never comes back to life."""
    return _page(server, 410, "410.html")


def too_many(server: MeetnowServer) -> web.Response:
    """429 for an address that swept too many unknown ids."""
    response = _page(server, 429, "429.html")
    response.headers["Retry-After"] = "60"
    return response


def unavailable(request: web.Request, message: str) -> web.Response:
    """503 while the shared store (Redis) is away: the API says ``temporarily_unavailable``,
    pages and websockets say it in words; both ask to retry in a few seconds."""
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    if request.path.startswith("/api/"):
        body = {"error": "temporarily_unavailable", "message": message}
        return web.json_response(body, status=503, headers=headers)
    return web.Response(status=503, text=message + "\n", headers=headers)


def _page(server: MeetnowServer, status: int, name: str) -> web.Response:
    return web.Response(
        status=status,
        body=server.page(name),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def lookup_room(request: web.Request) -> Room | web.Response:
    """The open room named in the path, or the response to give instead: 429 for an address that
    swept too many unknown ids (before any lookup; counted across nodes on Redis), 410 for an
    ended room, the same 404 for everything else. On Redis the room is read from there first:
    it may have been made or ended on another node."""
    server = request.app[SERVER]
    ip = server.client_ip(request)
    if await server.limits.lookups_blocked_shared(ip):
        return too_many(server)
    room_id = request.match_info["room_id"]
    await server.rooms.fetch(room_id)
    room = server.rooms.get_room(room_id)
    if room is not None:
        return room
    if server.rooms.is_gone(room_id):
        return gone(server)
    await server.limits.count_unknown_lookup_shared(ip)
    return not_found(server)


def misdirected() -> web.Response:
    """421 for a ``Host`` this server does not answer to (a DNS-rebinding page sends its own)."""
    return web.Response(
        status=421,
        text=(
            "This server does not answer to that host name. If it is yours, set "
            "MEETNOW_PUBLIC_URL (or MEETNOW_ALLOWED_ORIGINS) to the address people open.\n"
        ),
    )


@web.middleware
async def guard_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A ``Host`` we do not answer to gets 421 (``/healthz`` excepted: health checks use any
    name); an unknown path the one 404 page; aiohttp's HTTP errors a plain-text reason. The
    security headers go on every response in ``on_response_prepare``."""
    server = request.app[SERVER]
    if request.path != "/healthz" and not server.site.host_allowed(request.headers.get("Host")):
        return misdirected()
    try:
        return await handler(request)
    except TemporarilyUnavailable as error:  # on Redis, while it is away: nothing new for now
        return unavailable(request, str(error))
    except web.HTTPNotFound:
        return not_found(server)
    except web.HTTPException as error:
        headers = {k: v for k, v in error.headers.items() if k.lower() != "content-type"}
        return web.Response(status=error.status, text=error.text, headers=headers)


async def landing_page(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[SERVER].page("index.html"), content_type="text/html", charset="utf-8"
    )


async def room_page(request: web.Request) -> web.Response:
    """The room page. Read-only: chat apps fetch links for previews, so loading joins nothing."""
    server = request.app[SERVER]
    found = await lookup_room(request)
    if isinstance(found, web.Response):
        return found
    return web.Response(
        body=server.page("room.html"),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"},
    )


async def create_room(request: web.Request) -> web.Response:
    """Create a room. The answer carries the shareable ``url`` and, for the creator alone, a
    ``host_url`` whose fragment holds the host token (fragments never reach a server or a
    Referer, and the room page moves it into the browser's storage)."""
    server = request.app[SERVER]
    if not server.origin_allowed(request):
        return _api_error(403, "forbidden_origin", "Rooms are created from this site only.")
    try:
        await server.limits.check_web_creation_shared(server.client_ip(request))
    except RateLimited as error:
        return _api_error(429, "rate_limited", str(error))
    topic: str | None = None
    lobby = False
    if request.can_read_body:
        try:
            body = json.loads(await request.text() or "{}")
        except web.HTTPRequestEntityTooLarge:
            return _api_error(
                413, "body_too_large", f"The request body is over {MAX_API_BODY_BYTES} bytes."
            )
        except RecursionError:  # json's own guard against nesting that would exhaust the stack
            return _api_error(400, "invalid_json", "The request body is nested too deeply.")
        except ValueError:
            return _api_error(400, "invalid_json", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _api_error(400, "invalid_body", "The request body must be a JSON object.")
        raw = body.get("topic")
        if raw is not None and not isinstance(raw, str):
            return _api_error(400, "invalid_topic", "'topic' must be a string.")
        topic = raw
        lobby_raw = body.get("lobby", False)
        if not isinstance(lobby_raw, bool):
            return _api_error(400, "invalid_lobby", "'lobby' must be true or false.")
        lobby = lobby_raw
    try:
        room = server.rooms.create_room(topic, lobby=lobby)
    except TooManyRooms as error:
        return _api_error(503, "too_many_rooms", str(error))
    url = server.room_url(room.id)
    host_token = server.rooms.issue_host_token(room)
    await server.rooms.publish()  # on Redis: the link opens on every node once it is handed out
    return web.json_response(
        {
            "id": room.id,
            "url": url,
            "expires_at": iso_utc(room.expires_at),
            "host_url": f"{url}#host={host_token}",
        },
        status=201,
        headers={"Cache-Control": "no-store"},
    )


def _api_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file of the web client, or the one 404 page: the path is looked up in the list taken at
    start-up (``web_guard.static_files``), never joined to a directory, so nothing else (compiled
    Python, sources, dotfiles, listings, anything outside) can ever be served."""
    server = request.app[SERVER]
    response = server.static_assets.response(request, request.match_info["path"])
    return not_found(server) if response is None else response


async def healthz(request: web.Request) -> web.Response:
    """200 while the server can hold calls; 503 with the reason while it cannot (a relay worker
    down or still starting), so a load balancer or monitor sees it."""
    problems = request.app[SERVER].health_problems()
    headers = {"Cache-Control": "no-store"}
    if problems:
        body = {"status": "unavailable", "reason": "; ".join(problems)}
        return web.json_response(body, status=503, headers=headers)
    return web.json_response({"status": "ok"}, headers=headers)


async def websocket(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    found = await lookup_room(request)
    if isinstance(found, web.Response):
        return found
    room = found
    if not server.origin_allowed(request):
        return web.Response(status=403, text="Forbidden origin.\n")
    # Each socket can hold a peer connection: one address gets no more than a room's worth.
    ip = server.client_ip(request)
    if server.open_websockets[ip] >= server.settings.limit_websockets_per_ip:
        return web.Response(
            status=429,
            text="Too many open connections from this address.\n",
            headers={"Retry-After": "10"},
        )
    # On Redis, the room becomes this node's unless a live node already holds it: then this
    # socket is carried to that node (redis_proxy.py), where the call and its media are.
    holder = await server.rooms.claim(room.id)
    server.open_websockets[ip] += 1
    try:
        ws = web.WebSocketResponse(
            heartbeat=server.settings.ws_heartbeat_seconds,
            max_msg_size=server.settings.ws_max_message_bytes,
        )
        await ws.prepare(request)
        if holder is not None and server.forwarder is not None:
            await server.forwarder.forward(ws, holder, room.id, ip)
            return ws
        connection = ClientConnection(server, room, ws, client_ip=ip)
        await connection.run(server.settings.ws_join_timeout_seconds)
        return ws
    finally:
        server.open_websockets[ip] -= 1
        if server.open_websockets[ip] <= 0:
            del server.open_websockets[ip]
