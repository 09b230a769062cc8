"""A fake Slack on loopback: the Web API, commands' ``response_url``, and a Socket Mode websocket.

It answers the way Slack does (``{"ok": true, ...}`` or ``{"ok": false, "error": code}``, a 429
with ``Retry-After`` when rate limiting), checks the tokens it is given, and records every call,
so tests drive the real slack-bolt and slack_sdk code and look at what reached "Slack".

Also here: building and signing slash command requests and button clicks (``block_actions``) the
way Slack does (tests, benchmarks), and delivering clicks signed over HTTP or on Socket Mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web

__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "ApiCall",
    "FakeSlack",
    "block_actions",
    "signed_headers",
    "slash_command",
]

BOT_TOKEN = "xoxb-000-111-FAKEBOTTOKENabcdef"
APP_TOKEN = "xapp-1-A0FAKE-222-FAKEAPPTOKENabcdef"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALL_SCOPES = "commands,chat:write,chat:write.public,im:write,calls:write,calls:read,users:read"
JSON_PARAMS = ("blocks", "users", "attachments", "metadata")
"""Parameters slack_sdk sends as JSON strings inside a form or query string."""


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def slash_command(
    text: str,
    *,
    response_url: str,
    user_id: str = "U0ADA",
    channel_id: str = "C0GENERAL",
    command: str = "/meetnow",
    team_id: str = "T0FAKE",
) -> dict[str, str]:
    """The fields of a slash command, as Slack posts them (form) or wraps them (Socket Mode)."""
    return {
        "token": "legacy-verification-token-unused",
        "team_id": team_id,
        "team_domain": "fake",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": "ada",
        "command": command,
        "text": text,
        "api_app_id": "A0FAKE",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "1337.42.abcdef",
    }


def block_actions(
    action_id: str,
    value: str | None = None,
    *,
    response_url: str,
    user_id: str = "U0ADA",
    team_id: str = "T0FAKE",
    channel_id: str = "C0GENERAL",
    message_ts: str = "1800000001.000001",
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A click on a message's button, as Slack sends it (form field ``payload``, as JSON, over
    HTTP; the ``payload`` of an ``interactive`` envelope on Socket Mode)."""
    action: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": "b1",
        "text": {"type": "plain_text", "text": action_id, "emoji": False},
        "action_ts": f"{time.time():.6f}",
    }
    if value is not None:
        action["value"] = value
    return {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "fake"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": "1337.43.abcdef",
        "channel": {"id": channel_id, "name": "general"},
        "response_url": response_url,
        "actions": [action],
    }


def signed_interaction(secret: str, payload: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """An interaction's form body (``payload=<JSON>``) and its signed headers."""
    body = urlencode({"payload": json.dumps(payload)})
    return body, signed_headers(secret, body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ApiCall:
    """One request to the fake Web API."""

    method: str
    params: dict[str, Any]
    """Query string, form and JSON body merged; JSON-string parameters (blocks, users) decoded."""
    token: str | None
    status: int = 200
    error: str | None = None
    """The error the fake answered with, or None for ``ok: true``."""
    answer: dict[str, Any] = field(default_factory=dict)
    """What the fake answered (``ok: true`` calls)."""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class _Failure:
    error: str
    times: int | None
    """How many more calls fail (None: all)."""


@dataclass
class FakeSlack:
    """The fake. ``await start()``, point meetnow at :attr:`api_url`, ``await stop()``."""

    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    scopes: str = ALL_SCOPES
    """Sent in ``auth.test``'s ``x-oauth-scopes`` header, as Slack does."""

    calls: list[ApiCall] = field(default_factory=list)
    """Every Web API request, in order (rate-limited and failed ones included)."""
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Posts to response URLs: (the URL's id, the JSON body)."""
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    """Messages meetnow sent on the Socket Mode websocket (envelope acknowledgements)."""
    socket_connections: int = 0
    response_url_status: int = 200
    """What response URLs answer (404 ``expired_url`` to make them fail)."""
    locales: dict[str, str] = field(default_factory=dict)
    """Users' Slack locales (``fr-FR``), by user id: ``users.info`` with ``include_locale``
    answers them, as Slack does; users not here have none."""

    def __post_init__(self) -> None:
        self._failures: dict[str, _Failure] = {}
        self._rate_limits: dict[str, list[int]] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._ids = itertools.count(1)
        self._envelopes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = free_port()

    # Where it is --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base for ``MEETNOW_SLACK_API_URL`` (trailing slash: slack_sdk joins URLs)."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "1") -> str:
        return f"{self.base_url}/response/{name}"

    # Lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # users.info: slack_sdk sends a GET
        app.router.add_post("/response/{name}", self._response)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/_counts", self._counts)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        for hold in self._holds.values():
            hold.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # Scripting ----------------------------------------------------------------------------------

    def fail(self, method: str, error: str, times: int | None = None) -> None:
        """Answer ``method`` with ``{"ok": false, "error": error}`` (``times`` times, or always)."""
        self._failures[method] = _Failure(error, times)

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with a 429 and ``Retry-After``."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def hold(self, method: str) -> None:
        """Keep calls to ``method`` waiting (after recording them) until :meth:`release`."""
        self._holds[method] = asyncio.Event()

    def release(self, method: str) -> None:
        self._holds.pop(method).set()

    def deliver_slash_command(self, payload: dict[str, str]) -> str:
        """Send a slash command envelope on the Socket Mode websocket (once one is open)."""
        return self._deliver("slash_commands", payload, accepts_response_payload=True)

    def deliver_interaction(self, payload: dict[str, Any]) -> str:
        """Send a click (:func:`block_actions`) on the Socket Mode websocket."""
        return self._deliver("interactive", payload, accepts_response_payload=False)

    async def click(
        self, events_url: str, payload: dict[str, Any], secret: str = SIGNING_SECRET
    ) -> int:
        """POST a click (:func:`block_actions`) to an app's request URL, signed as Slack signs
        it; the HTTP status of the app's acknowledgement."""
        body, headers = signed_interaction(secret, payload)
        async with (
            aiohttp.ClientSession() as session,
            session.post(events_url, data=body, headers=headers) as response,
        ):
            await response.read()
            return response.status

    def _deliver(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool
    ) -> str:
        envelope_id = f"envelope-{next(self._ids)}"
        self._envelopes.put_nowait(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": accepts_response_payload,
            }
        )
        return envelope_id

    # Reading the record -------------------------------------------------------------------------

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake Slack: no {what} within {timeout} s")
            await asyncio.sleep(0.02)

    async def wait_calls(self, method: str, count: int = 1, timeout: float = 10.0) -> list[ApiCall]:
        """Wait until ``method`` has succeeded ``count`` times; return those calls."""
        await self.wait_for(
            lambda: len(self.calls_to(method)) >= count, timeout, f"{count} x {method}"
        )
        return self.calls_to(method)

    async def wait_responses(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: len(self.responses) >= count, timeout, "response_url post")

    # The Web API --------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            params.update(await request.post())
        for name in JSON_PARAMS:
            if isinstance(params.get(name), str):
                with contextlib.suppress(ValueError):
                    params[name] = json.loads(params[name])
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        call = ApiCall(method, params, token)
        self.calls.append(call)
        hold = self._holds.get(method)
        if hold is not None:
            await hold.wait()

        waits = self._rate_limits.get(method)
        if waits:
            call.status, call.error = 429, "ratelimited"
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(waits.pop(0))},
            )
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            call.error = "not_authed" if not token else "invalid_auth"
            return web.json_response({"ok": False, "error": call.error})
        failure = self._failures.get(method)
        if failure is not None and failure.times != 0:
            if failure.times is not None:
                failure.times -= 1
            call.error = failure.error
            body: dict[str, Any] = {"ok": False, "error": failure.error}
            if failure.error == "missing_scope":
                body.update(needed="calls:write", provided=self.scopes)
            return web.json_response(body)
        headers = {"x-oauth-scopes": self.scopes} if method == "auth.test" else {}
        call.answer = {"ok": True, **self._answer(method, params)}
        return web.json_response(call.answer, headers=headers)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        n = next(self._ids)
        ts = f"{1_800_000_000 + n}.{n:06d}"
        if method == "auth.test":
            return {
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "meetnow",
                "team_id": "T0FAKE",
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            channel = str(params.get("channel", ""))
            if channel.startswith(("U", "W")):  # a DM: Slack answers with the IM's id
                channel = "D" + channel[1:]
            return {"channel": channel, "ts": ts, "message": {"text": params.get("text", "")}}
        if method == "chat.update":
            return {"channel": params.get("channel"), "ts": params.get("ts")}
        if method == "users.info":
            user_id = str(params.get("user", ""))
            found: dict[str, Any] = {"id": user_id, "name": user_id.lower()}
            if (
                str(params.get("include_locale", "")).lower() in ("1", "true")
                and user_id in self.locales
            ):
                found["locale"] = self.locales[user_id]
            return {"user": found}
        if method == "chat.postEphemeral":
            return {"message_ts": ts}
        if method == "calls.add":
            return {
                "call": {
                    "id": f"R0CALL{n}",
                    "date_start": params.get("date_start"),
                    "external_unique_id": params.get("external_unique_id"),
                    "join_url": params.get("join_url"),
                }
            }
        if method == "apps.connections.open":
            return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={n}"}
        return {}

    async def _counts(self, request: web.Request) -> web.Response:
        """Successful calls by method (for a fake in another process)."""
        tally: dict[str, int] = {}
        for call in self.calls:
            if call.ok:
                tally[call.method] = tally.get(call.method, 0) + 1
        return web.json_response(tally)

    # Response URLs ------------------------------------------------------------------------------

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append((request.match_info["name"], await request.json()))
        if self.response_url_status != 200:
            return web.Response(status=self.response_url_status, text="expired_url")
        return web.Response(text="ok")

    # Socket Mode --------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        self.socket_connections += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0FAKE"},
            }
        )
        sender = asyncio.ensure_future(self._send_envelopes(ws))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self.socket_acks.append(json.loads(message.data))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._sockets.discard(ws)
        return ws

    async def _send_envelopes(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            envelope = await self._envelopes.get()
            await ws.send_json(envelope)


# A fake Slack in its own process (benchmarks: its work must not share the server's event loop).


async def _serve_forever(port: int) -> None:
    fake = FakeSlack()
    fake.port = port
    await fake.start()
    print("fake Slack ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="a fake Slack Web API on 127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(parser.parse_args().port))
