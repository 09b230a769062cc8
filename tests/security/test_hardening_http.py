"""HTTP hardening from the outside attack pass (issue 10, items 3, 4 and 6), against the real app on a
loopback port: raw sockets for what no HTTP client sends, real websockets, and every log record
the process writes captured at the root with DEBUG on.

- every response, aiohttp's own 400 for a request it cannot parse included, carries the security
  headers; nested or oversized JSON gets 400/413 with a reason; no log line carries the client's
  address or the bytes it sent;
- a DNS-rebinding page (its own name in ``Host`` and ``Origin``) is refused on the API and the
  websocket, while ``localhost`` and ``127.0.0.1`` both keep working on a default install;
- ``/static/`` serves the web client's files and nothing else (no ``.pyc``, ``.py``, dotfiles).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import py_compile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from signaling.server import web_client_dir
from signaling.settings import Settings
from signaling.web_guard import RedactedServerLog, SiteNames

from ..conftest import RunningServer, start_server, test_settings

EXPECTED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Screen sharing is this page's own (issue 14); nothing else gets the camera, the microphone
    # or the screen.
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
}
"""Written out here, not read from the code under test."""


def missing_security_headers(headers: dict[str, str]) -> list[str]:
    """The security headers a response lacks (names lower-cased by the caller or not)."""
    folded = {name.lower(): value for name, value in headers.items()}
    missing = [
        name for name, value in EXPECTED_HEADERS.items() if folded.get(name.lower()) != value
    ]
    csp = folded.get("content-security-policy", "")
    if not (csp.startswith("default-src 'self'") and "frame-ancestors 'none'" in csp):
        missing.append("Content-Security-Policy")
    return missing


# ------------------------------------------------------------------------------ log capture


@contextlib.contextmanager
def every_log_line() -> Iterator[list[str]]:
    """Every record that reaches the root logger while the root is at DEBUG, formatted with its
    arguments and traceback (what a log file would hold). Loggers that hold their own higher
    level keep it: that is what is under test."""
    lines: list[str] = []
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    root = logging.getLogger()
    handler = Keep(logging.DEBUG)
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def leaks(lines: list[str], secrets: list[str]) -> list[str]:
    """The log lines that contain any of ``secrets``."""
    return [line for line in lines if any(secret in line for secret in secrets)]


# --------------------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def send_raw(host: str, port: int, request: bytes) -> RawResponse:
    """Write ``request`` as it is on a fresh connection; the response (the server closes the
    connection after a parse error, so read to the end)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    return RawResponse(int(status_line.split()[1]), headers, body)


MARKER = "ZQXJ7"
"""A string no log line has any other reason to hold."""
MALFORMED = {
    "bad method": f"{MARKER}METHOD /r/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "control byte in the path": f"GET /{MARKER}\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "header without a colon": f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX {MARKER}\r\n\r\n".encode(),
    "bad version": f"GET /{MARKER} HTTP/9.Z\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "TLS to an HTTP port": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + MARKER.encode() * 8,
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# ---------------------------------------------------- 3. errors carry the headers, logs stay clean


@pytest.mark.parametrize("what", list(MALFORMED))
async def test_a_request_aiohttp_cannot_parse_gets_400_with_the_headers_and_no_log_trace(
    what: str,
) -> None:
    with every_log_line() as lines:
        running, runner = await start_server(test_settings())
        try:
            port = running.meetnow.settings.port
            response = await send_raw("127.0.0.1", port, MALFORMED[what])
            assert response.status == 400
            assert missing_security_headers(response.headers) == []
            # The server is still there, and this request proves it processed the one before.
            assert (
                await send_raw("127.0.0.1", port, b"GET /healthz HTTP/1.0\r\n\r\n")
            ).status == 200
        finally:
            await runner.cleanup()
    assert lines, "nothing was logged at all: the capture is not working"
    assert leaks(lines, [MARKER, "127.0.0.1"]) == []


async def test_the_log_check_sees_aiohttps_own_lines() -> None:
    """Test of the test: a plain aiohttp app (its own request handler logger and access log, as
    meetnow had them) logs the client's address and the raw bytes, and answers without the
    headers; the same capture catches both."""
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with every_log_line() as lines:
            response = await send_raw("127.0.0.1", port, MALFORMED["header without a colon"])
        assert response.status == 400
        assert "Content-Security-Policy" in missing_security_headers(response.headers)
        assert leaks(lines, [MARKER]) and leaks(lines, ["127.0.0.1"])
    finally:
        await runner.cleanup()


def test_the_header_check_sees_a_policy_that_forbids_screen_sharing() -> None:
    """Test of the test: the policy the server sent before screen sharing (display-capture=())
    fails the check, as a missing one does."""
    headers = {name: value for name, value in EXPECTED_HEADERS.items()}
    headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    assert missing_security_headers(headers) == []
    headers["Permissions-Policy"] = (
        "camera=(self), microphone=(self), display-capture=(), geolocation=()"
    )
    assert missing_security_headers(headers) == ["Permissions-Policy"]
    del headers["Permissions-Policy"]
    assert missing_security_headers(headers) == ["Permissions-Policy"]


def test_the_redacted_server_log_keeps_the_stack_of_a_crash_but_no_message_or_address() -> None:
    """What aiohttp hands its logger when a handler crashes, through ours: the stack stays (the
    operator needs it), the exception's message (which may quote a request) and the address go,
    and a flood of the same line is written once."""
    target = logging.getLogger("tests.redacted")
    now = [0.0]
    log = RedactedServerLog(target, interval=60, clock=lambda: now[0])
    with every_log_line() as lines:
        for _ in range(3):
            try:
                raise ValueError(f"bad input {MARKER}")
            except ValueError as error:
                log.exception("Error handling request from %s", "203.0.113.9", exc_info=error)
        now[0] = 61.0
        log.error("Error handling request from %s", "203.0.113.9", exc_info=ValueError(MARKER))
    mine = [line for line in lines if "tests.redacted" in line]
    assert len(mine) == 2, mine
    assert "ValueError" in mine[0] and "test_hardening_http.py" in mine[0]  # the stack
    assert "2 more like it left out" in mine[1]
    assert leaks(mine, [MARKER, "203.0.113.9"]) == []


async def test_a_5000_deep_json_body_gets_400_with_a_reason_and_the_headers(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    with every_log_line() as lines:
        # 5,000 arrays deep, and objects as deep as 16 KiB allows: both past json's own guard.
        for body in ("[" * 5000 + "]" * 5000, '{"":' * 3000 + "1" + "}" * 3000):
            async with http.post(
                server.base_url + "/api/rooms",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 400
                assert missing_security_headers(dict(response.headers)) == []
                answer = await response.json()
            assert answer["error"] == "invalid_json"
            assert "nested too deeply" in answer["message"]
    assert server.meetnow.rooms.rooms() == []
    assert [line for line in lines if "Traceback" in line or "RecursionError" in line] == []


async def test_an_oversized_body_gets_413_with_a_reason_and_the_headers(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(server.base_url + "/api/rooms", json={"topic": "t" * 20_000}) as response:
        assert response.status == 413
        assert missing_security_headers(dict(response.headers)) == []
        answer = await response.json()
    assert answer["error"] == "body_too_large" and "16384 bytes" in answer["message"]
    assert server.meetnow.rooms.rooms() == []


# ------------------------------------------------------------------ 4. Host and Origin


async def test_a_dns_rebinding_page_is_refused_on_the_api_and_the_websocket(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    port = server.meetnow.settings.port
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    async with http.post(server.base_url + "/api/rooms", headers=rebound) as response:
        assert response.status == 421
        assert missing_security_headers(dict(response.headers)) == []
        assert "MEETNOW_PUBLIC_URL" in await response.text()
    assert server.meetnow.rooms.rooms() == []

    room_id = server.new_room()
    ws_url = server.base_url.replace("http://", "ws://") + "/ws/" + room_id
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(ws_url, headers=rebound)
    assert refused.value.status == 421
    # Nor can it read the room page or the landing page through the rebound name.
    for path in ("/", "/r/" + room_id):
        async with http.get(server.base_url + path, headers=rebound) as response:
            assert response.status == 421

    # The normal flows: a default install on loopback answers to localhost and 127.0.0.1 alike.
    for name in ("localhost", "127.0.0.1"):
        own = {"Host": f"{name}:{port}", "Origin": f"http://{name}:{port}"}
        async with http.post(server.base_url + "/api/rooms", headers=own) as response:
            assert response.status == 201, name
        async with http.ws_connect(ws_url, headers=own) as ws:
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json(timeout=10) == {"type": "pong"}
    # Health checks may use any name (nothing to read there).
    async with http.get(server.base_url + "/healthz", headers=rebound) as response:
        assert response.status == 200


async def test_the_origin_is_checked_against_the_configuration_never_the_host(
    http: aiohttp.ClientSession,
) -> None:
    running, runner = await start_server(test_settings(public_url="https://meet.example.org"))
    try:
        url = running.base_url + "/api/rooms"
        proxied = {"Host": "meet.example.org", "Origin": "https://meet.example.org"}
        async with http.post(url, headers=proxied) as response:
            assert response.status == 201
        # Same name as the Host, another scheme: the old check built "http://" + Host and let
        # it through; the configured origin is https only.
        same_as_host = {"Host": "meet.example.org", "Origin": "http://meet.example.org"}
        async with http.post(url, headers=same_as_host) as response:
            assert response.status == 403
            assert (await response.json())["error"] == "forbidden_origin"
        async with http.post(url, headers={**proxied, "Origin": "null"}) as response:
            assert response.status == 403
        async with http.post(url, headers={"Host": "meet.example.org.evil.example"}) as response:
            assert response.status == 421
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("192.0.2.7:8080", True),
        ("[2001:db8::7]:8080", True),
        ("localhost:8080", True),
        ("127.0.0.1:8080", True),
        ("192.0.2.7:9090", False),  # another port
        ("192.0.2.8:8080", False),  # not one of this machine's addresses
        ("evil.example:8080", False),
        ("192.0.2.7.nip.io:8080", False),
        ("192.0.2.7:8080@evil.example", False),
        ("", False),
    ],
)
def test_on_all_interfaces_only_this_machines_own_addresses_are_names(
    host: str, allowed: bool
) -> None:
    settings = Settings(host="0.0.0.0", port=8080, _env_file=None)  # type: ignore[call-arg]
    names = SiteNames(settings, addresses=lambda: ["192.0.2.7", "2001:db8::7"])
    assert names.host_allowed(host) is allowed
    assert names.origin_allowed(f"http://{host}") is allowed


# ------------------------------------------------------------------ 6. static files


@pytest.fixture
def stray_files() -> Iterator[dict[str, Path]]:
    """Files that sit in the web client's folder without being part of it: its compiled
    ``__init__``, a dotfile, a config file and a source file (made here if missing, and the
    ones made removed afterwards)."""
    root = web_client_dir()
    made: list[Path] = []
    written = py_compile.compile(str(root / "__init__.py"), doraise=True)
    assert written is not None
    compiled = Path(written)
    dotfile = root / ".meetnow-test-secret"
    if not dotfile.exists():
        dotfile.write_text(MARKER)
        made.append(dotfile)
    yield {
        "compiled": compiled,
        "dotfile": dotfile,
        "config": root / "jsconfig.json",
        "source": root / "__init__.py",
    }
    for path in made:
        path.unlink(missing_ok=True)


async def test_static_serves_the_web_client_and_nothing_else(
    stray_files: dict[str, Path], http: aiohttp.ClientSession
) -> None:
    running, runner = await start_server(test_settings())  # lists its files after they exist
    try:
        root = web_client_dir()
        for what, path in stray_files.items():
            assert path.is_file(), what  # each one is really there to be served
            relative = path.relative_to(root).as_posix()
            async with http.get(f"{running.base_url}/static/{relative}") as response:
                assert response.status == 404, (what, relative)
                assert missing_security_headers(dict(response.headers)) == []
                assert await response.read() == running.meetnow.page("404.html")
        # The web client itself is all there: every file the pages need answers 200.
        served = set(running.meetnow.static_files)
        assert {"room.html", "css/meetnow.css", "js/room.js", "img/favicon.png"} <= served
        web_kinds = set("html css js png svg ico jpg jpeg webp gif woff2".split())
        assert all(name.rsplit(".", 1)[-1] in web_kinds for name in served if not is_catalog(name))
        # JSON only for the language catalogs, never a tool's configuration (jsconfig.json).
        assert {"i18n/en.json", "i18n/fr.json"} <= served
        assert "jsconfig.json" not in served
        for name in sorted(served):
            async with http.get(f"{running.base_url}/static/{name}") as response:
                assert response.status == 200, name
                assert await response.read() == (root / name).read_bytes()
    finally:
        await runner.cleanup()


def is_catalog(name: str) -> bool:
    return name.startswith("i18n/") and name.endswith(".json")
