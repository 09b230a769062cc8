"""The web server over real HTTP: pages, the rooms API, the one 404, headers and the websocket door."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from yarl import URL

from signaling.rooms import ROOM_ID_PATTERN, new_room_id

from ..conftest import RunningServer, start_server, test_settings

DAY = 24 * 3600
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def raw_url(server: RunningServer, path: str) -> URL:
    """The URL exactly as written: no client-side normalisation of ``..`` or escapes."""
    return URL(server.base_url + path, encoded=True)


def parse_iso_z(text: str) -> float:
    assert ISO_Z.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def assert_security_headers(response: aiohttp.ClientResponse) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp.startswith("default-src 'self'"), (response.url, csp)
    assert response.headers.get("Referrer-Policy") == "no-referrer", response.url
    assert response.headers.get("X-Content-Type-Options") == "nosniff", response.url


# ---------------------------------------------------------------- pages and headers


async def test_landing_page(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.base_url + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        body = await response.text()
    assert "Meet now" in body
    assert body.lstrip().lower().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/r/{room}", 200),
        ("GET", "/r/{unknown}", 404),
        ("GET", "/nope", 404),
        ("GET", "/static/js/missing.js", 404),
        ("POST", "/api/rooms", 201),
        ("GET", "/static/js/protocol.js", 200),
        ("GET", "/healthz", 200),
        ("GET", "/ws/{unknown}", 404),
    ],
)
async def test_security_headers(
    server: RunningServer, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    url = server.base_url + path.format(room=server.new_room(), unknown=new_room_id())
    async with http.request(method, url) as response:
        assert response.status == status
        assert_security_headers(response)
        assert response.headers.get("X-Frame-Options") == "DENY"


async def test_security_headers_on_error_responses(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(server.base_url + "/api/rooms", data=b"x" * (17 * 1024)) as response:
        assert response.status == 413
        assert_security_headers(response)
    async with http.put(server.base_url + "/api/rooms") as response:
        assert response.status == 405
        assert_security_headers(response)


async def test_healthz(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.base_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


# ---------------------------------------------------------------- rooms API


async def test_create_room(server: RunningServer, http: aiohttp.ClientSession) -> None:
    before = time.time()
    async with http.post(server.base_url + "/api/rooms") as response:
        assert response.status == 201
        assert response.content_type == "application/json"
        assert response.headers.get("Cache-Control") == "no-store"
        data = await response.json()
    after = time.time()
    assert set(data) == {"id", "url", "expires_at", "host_url"}
    assert ROOM_ID_PATTERN.match(data["id"])
    assert data["url"] == server.base_url + "/r/" + data["id"]
    # The host credential rides only in the creator's link, in the fragment.
    assert data["host_url"].startswith(data["url"] + "#host=")
    assert data["host_url"].split("#host=")[1] not in data["url"]
    assert data["expires_at"].endswith("Z")
    expires = parse_iso_z(data["expires_at"])
    # Whole seconds on the wire: allow the truncation on either side.
    assert before + DAY - 1 <= expires <= after + DAY + 1
    room = server.meetnow.rooms.get_room(data["id"])
    assert room is not None
    assert room.topic is None
    assert not room.participants


async def test_create_room_expiry_follows_clock(
    clocked_server: RunningServer, http: aiohttp.ClientSession
) -> None:
    assert clocked_server.clock is not None
    start = clocked_server.clock.now
    async with http.post(clocked_server.base_url + "/api/rooms") as response:
        data = await response.json()
    assert parse_iso_z(data["expires_at"]) == start + DAY


async def test_create_rooms_are_distinct(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ids = set()
    for _ in range(10):
        async with http.post(server.base_url + "/api/rooms") as response:
            ids.add((await response.json())["id"])
    assert len(ids) == 10
    assert all(server.meetnow.rooms.get_room(room_id) is not None for room_id in ids)


@pytest.mark.parametrize(
    ("topic", "kept"),
    [
        ("Weekly sync", "Weekly sync"),
        ("  Weekly\nsync\x00 ", "Weekly sync"),
        ("t" * 1000, "t" * 200),
        ("", None),
        (None, None),
    ],
)
async def test_create_room_with_topic(
    server: RunningServer, http: aiohttp.ClientSession, topic: str | None, kept: str | None
) -> None:
    async with http.post(server.base_url + "/api/rooms", json={"topic": topic}) as response:
        assert response.status == 201
        data = await response.json()
    room = server.meetnow.rooms.get_room(data["id"])
    assert room is not None
    assert room.topic == kept


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\xfd", "invalid_json"),
        (b"[]", "invalid_body"),
        (b'"Weekly sync"', "invalid_body"),
        (b"null", "invalid_body"),
        (b'{"topic": 5}', "invalid_topic"),
        (b'{"topic": ["Weekly sync"]}', "invalid_topic"),
        (b'{"topic": {"text": "x"}}', "invalid_topic"),
        (b'{"topic": true}', "invalid_topic"),
    ],
)
async def test_create_room_bad_body(
    server: RunningServer, http: aiohttp.ClientSession, body: bytes, error: str
) -> None:
    async with http.post(
        server.base_url + "/api/rooms", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        data = await response.json()
    assert data["error"] == error
    assert isinstance(data["message"], str) and data["message"]
    assert server.meetnow.rooms.rooms() == []  # nothing was created


async def test_create_room_body_too_large(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    topic = "t" * (16 * 1024)
    async with http.post(server.base_url + "/api/rooms", json={"topic": topic}) as response:
        assert response.status == 413
    assert server.meetnow.rooms.rooms() == []


async def test_create_room_at_cap(http: aiohttp.ClientSession) -> None:
    running, runner = await start_server(test_settings(max_rooms=2))
    try:
        for _ in range(2):
            async with http.post(running.base_url + "/api/rooms") as response:
                assert response.status == 201
        async with http.post(running.base_url + "/api/rooms") as response:
            assert response.status == 503
            assert (await response.json())["error"] == "too_many_rooms"
        assert len(running.meetnow.rooms.rooms()) == 2
    finally:
        await runner.cleanup()


async def test_links_use_public_url(http: aiohttp.ClientSession) -> None:
    running, runner = await start_server(test_settings(public_url="https://meet.example.org/"))
    try:
        async with http.post(running.base_url + "/api/rooms") as response:
            data = await response.json()
        assert data["url"] == "https://meet.example.org/r/" + data["id"]
        # The public origin may open the websocket; the server's own address still can too.
        for origin in ("https://meet.example.org", running.base_url):
            async with http.ws_connect(running.base_url + "/ws/" + data["id"], origin=origin) as ws:
                assert not ws.closed
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- room page


async def test_room_page(server: RunningServer, http: aiohttp.ClientSession) -> None:
    room_id = server.new_room()
    async with http.get(server.base_url + "/r/" + room_id) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.headers.get("Cache-Control") == "no-store"
        assert "noindex" in response.headers.get("X-Robots-Tag", "")
        body = await response.text()
    assert "Your name" in body
    assert re.search(r"<button[^>]*>\s*Join\s*</button>", body)


async def test_room_page_joins_nobody(server: RunningServer, http: aiohttp.ClientSession) -> None:
    room_id = server.new_room()
    room = server.meetnow.rooms.get_room(room_id)
    assert room is not None
    expires_at = room.expires_at
    for _ in range(20):
        async with http.get(server.base_url + "/r/" + room_id) as response:
            assert response.status == 200
            await response.read()
    assert server.meetnow.rooms.get_room(room_id) is room
    assert room.participants == {}
    assert not room.ever_joined
    assert room.expires_at == expires_at
    assert server.meetnow.hub.count() == 0


# ---------------------------------------------------------------- the one 404


async def test_same_404_for_every_unknown_room(
    clocked_server: RunningServer, http: aiohttp.ClientSession
) -> None:
    server = clocked_server
    assert server.clock is not None
    async with http.post(server.base_url + "/api/rooms") as response:
        expired_id = (await response.json())["id"]
    async with http.get(server.base_url + "/r/" + expired_id) as response:
        assert response.status == 200  # alive before the clock moves
    server.clock.advance(DAY + 1)

    unknown_id = new_room_id()
    paths = {
        "unknown valid-looking id": "/r/" + unknown_id,
        "malformed id": "/r/short",
        "malformed id with dots": "/r/" + "." * 22,
        "random path": "/nope",
        "nested random path": "/r/" + unknown_id + "/extra",
        "websocket for unknown room": "/ws/" + unknown_id,
    }
    bodies = {}
    for what, path in paths.items():
        async with http.get(raw_url(server, path)) as response:
            assert response.status == 404, what
            assert response.content_type == "text/html", what
            assert response.headers.get("Cache-Control") == "no-store", what
            assert_security_headers(response)
            bodies[what] = await response.read()
    assert len(set(bodies.values())) == 1, {k: len(v) for k, v in bodies.items()}
    page = next(iter(bodies.values()))
    assert page
    assert unknown_id.encode() not in page
    # An expired room's link is not unknown: it answers 410 "ended", page and websocket alike,
    # and never comes back to life.
    for path in ("/r/" + expired_id, "/ws/" + expired_id):
        async with http.get(raw_url(server, path)) as response:
            assert response.status == 410, path
            assert_security_headers(response)
            assert b"This meeting has ended" in await response.read()
    assert server.meetnow.rooms.get_room(expired_id) is None


async def test_same_404_for_missing_static_file(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.base_url + "/nope") as response:
        assert response.status == 404
        expected = await response.read()
    for path in ("/static/nope.js", "/static/js/nope.js"):
        async with http.get(server.base_url + path) as response:
            assert response.status == 404
            assert response.content_type == "text/html"
            assert await response.read() == expected


# ---------------------------------------------------------------- websocket door


def ws_url(server: RunningServer, room_id: str) -> str:
    return server.base_url.replace("http://", "ws://") + "/ws/" + room_id


@pytest.mark.parametrize("room_id", [new_room_id(), "short", "A" * 23])
async def test_websocket_unknown_room(
    server: RunningServer, http: aiohttp.ClientSession, room_id: str
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(ws_url(server, room_id), origin=server.base_url)
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example", "http://localhost"]
)
async def test_websocket_foreign_origin(
    server: RunningServer, http: aiohttp.ClientSession, origin: str
) -> None:
    room_id = server.new_room()
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(ws_url(server, room_id), origin=origin)
    assert caught.value.status == 403
    room = server.meetnow.rooms.get_room(room_id)
    assert room is not None and not room.ever_joined


async def test_websocket_own_origin(server: RunningServer, http: aiohttp.ClientSession) -> None:
    room_id = server.new_room()
    async with http.ws_connect(ws_url(server, room_id), origin=server.base_url) as ws:
        await ws.send_str(json.dumps({"type": "ping"}))
        reply = await ws.receive_json(timeout=10)
        assert reply == {"type": "pong"}
        room = server.meetnow.rooms.get_room(room_id)
        assert room is not None
        assert room.participants == {}  # connecting joins nothing
        await ws.close()
    assert ws.closed


async def test_websocket_origin_is_case_insensitive(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    room_id = server.new_room()
    async with http.ws_connect(ws_url(server, room_id), origin=server.base_url.upper()) as ws:
        assert not ws.closed


async def test_websocket_extra_allowed_origin(http: aiohttp.ClientSession) -> None:
    running, runner = await start_server(
        test_settings(allowed_origins=["https://chat.example.com"])
    )
    try:
        room_id = running.new_room()
        async with http.ws_connect(
            ws_url(running, room_id), origin="https://chat.example.com"
        ) as ws:
            assert not ws.closed
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(ws_url(running, room_id), origin="https://other.example.com")
        assert caught.value.status == 403
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- static files


async def test_static_javascript(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.base_url + "/static/js/protocol.js") as response:
        assert response.status == 200
        assert response.content_type in ("application/javascript", "text/javascript")
        body = await response.read()
    on_disk = (server.meetnow.static_dir / "js" / "protocol.js").read_bytes()
    assert body == on_disk


@pytest.mark.parametrize(
    "path",
    [
        "/static/../signaling/server.py",
        "/static/%2e%2e/signaling/server.py",
        "/static/..%2fsignaling%2fserver.py",
        "/static/%2e%2e%2fsignaling%2fserver.py",
        "/static/js/../../signaling/server.py",
        "/static/js/..%2f..%2fsignaling/server.py",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..\\signaling\\server.py",
    ],
)
async def test_static_path_traversal(
    server: RunningServer, http: aiohttp.ClientSession, path: str
) -> None:
    server_source = (server.meetnow.static_dir.parent / "signaling" / "server.py").read_bytes()
    assert server_source  # the file a traversal would reach does exist
    async with http.get(raw_url(server, path)) as response:
        body = await response.read()
        assert response.status != 200, path
    assert b"def create_app" not in body
    assert b"root:" not in body


async def test_static_directory_not_listed(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.base_url + "/static/js/") as response:
        body = await response.text()
        assert response.status != 200
    assert "protocol.js" not in body
