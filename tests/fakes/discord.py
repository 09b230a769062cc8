"""A fake Discord on loopback, for the real discord.py client and our raw HTTP calls.

REST lives under ``/api/v10`` (point ``MEETNOW_DISCORD_API_URL`` at :attr:`FakeDiscord.api_url`);
``GET /gateway/bot`` hands out this fake's own websocket gateway, which sends HELLO, takes
IDENTIFY, answers heartbeats, sends READY and then, on demand, ``INTERACTION_CREATE``: a
``/meetnow`` command (type 2) or a click on a message's button (type 3, MESSAGE_COMPONENT). The
same payloads, signed by the test, go to the HTTP interactions endpoint; :meth:`FakeDiscord.respond`
then does with the endpoint's answer what Discord does (post a message, or update the clicked one).

What it must do for discord.py to accept it (each learnt the hard way):

- every REST reply has ``Content-Type: application/json`` exactly: with aiohttp's
  ``json_response`` (which adds ``; charset=utf-8``) discord.py reads the body as text and fails;
- READY carries ``shard`` (the sharded client reads it) and ``application``;
- INTERACTION_CREATE carries ``attachment_size_limit`` (without it the client's parser raises
  and the connection dies);
- a 429 carries a ``Via`` header: without one discord.py takes it for a Cloudflare ban and gives
  up instead of waiting ``retry_after``.

Every request is recorded (:attr:`FakeDiscord.calls`), every gateway websocket too
(:attr:`FakeDiscord.gateway_connections`, and the most ever open at once);
:meth:`FakeDiscord.fail` makes the next requests to a route fail (403 code 50013, 429 with
``retry_after``, 401 code 50027, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
APPLICATION_ID = 1_100_000_000_000_000_001
BOT_USER_ID = 1_100_000_000_000_000_002
GUILD_ID = 1_100_000_000_000_000_003
CHANNEL_ID = 1_100_000_000_000_000_004
COMMAND_ID = 1_100_000_000_000_000_005
ALL_PERMISSIONS = (1 << 50) - 1
ATTACHMENT_SIZE_LIMIT = 8 * 1024 * 1024
TIMESTAMP = "2026-01-01T00:00:00.000000+00:00"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON reply as Discord sends it: ``Content-Type: application/json``, no charset."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def user(user_id: int, username: str, global_name: str | None = None) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
        "public_flags": 0,
    }


def member(user_data: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": user_data,
        "roles": [],
        "joined_at": TIMESTAMP,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "premium_since": None,
        "communication_disabled_until": None,
        "permissions": str(ALL_PERMISSIONS),
    }


def with_locales(payload: dict[str, Any], locale: str, guild_locale: str | None) -> dict[str, Any]:
    """An interaction as its invoker's client (``locale``) and server (``guild_locale``, also
    the guild object's ``locale``) speak; no ``guild_locale`` key when None."""
    payload["locale"] = locale
    payload.pop("guild_locale", None)
    if guild_locale is not None:
        payload["guild_locale"] = guild_locale
        payload["guild"]["locale"] = guild_locale
    return payload


@dataclass
class Failure:
    """One injected error reply."""

    status: int
    code: int = 0
    message: str = "error"
    retry_after: float | None = None

    def response(self) -> web.Response:
        if self.status == 429:
            after = self.retry_after or 0.0
            return reply(
                {"message": "You are being rate limited.", "retry_after": after, "global": False},
                429,
                {"Retry-After": str(after), "Via": "1.1 google", "X-RateLimit-Scope": "user"},
            )
        return reply({"message": self.message, "code": self.code}, self.status)


def forbidden() -> Failure:
    return Failure(403, 50013, "Missing Permissions")


def rate_limited(retry_after: float) -> Failure:
    return Failure(429, retry_after=retry_after)


def token_expired() -> Failure:
    return Failure(401, 50027, "Invalid Webhook Token")


@dataclass
class Call:
    """One recorded REST request."""

    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float
    """``time.perf_counter()`` when it arrived."""
    status: int = 0
    """What the fake answered."""


@dataclass
class GatewayConnection:
    """One websocket opened on the fake's gateway."""

    peer: tuple[str, int]
    """The client's address and port (which process it is: see who owns that port)."""
    opened_at: float
    """``time.monotonic()`` when it opened."""
    identified_at: float | None = None
    """When it sent a good IDENTIFY and got READY; None: not (yet)."""
    closed_at: float | None = None
    """When it closed; None: open."""


@dataclass
class FakeDiscord:
    token: str = "fake-bot-token.Abc123.secret"
    """The bot token it accepts."""
    heartbeat_interval_ms: int = 41_250
    calls: list[Call] = field(default_factory=list)
    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)
    """Registered commands: by guild id, or None for global ones."""
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Messages by id, as they are now."""
    edits: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    """(route, message id, body) of every successful edit, in order."""
    followups: list[dict[str, Any]] = field(default_factory=list)
    interactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Every interaction sent or made, by id."""
    sent_at: dict[int, float] = field(default_factory=dict)
    """``perf_counter()`` when each INTERACTION_CREATE went out on the gateway."""
    callback_at: dict[int, float] = field(default_factory=dict)
    """``perf_counter()`` when each interaction's callback arrived."""
    identify: dict[str, Any] | None = None
    gateway_queries: list[dict[str, str]] = field(default_factory=list)
    expired_tokens: set[str] = field(default_factory=set)
    gateway_connections: list[GatewayConnection] = field(default_factory=list)
    """Every gateway websocket, in the order they opened."""
    most_gateways_at_once: int = 0
    """The most gateway websockets ever open at the same time (a high-water mark: a second
    connection, however brief, is never missed)."""

    def __post_init__(self) -> None:
        self.port = _free_port()
        self.failures: dict[str, list[Failure]] = {}
        self.ready = asyncio.Event()
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self._by_token: dict[str, int] = {}
        self._responded: set[int] = set()
        self._ws: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self.call_added = asyncio.Condition()

    # Addresses ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def bot_user(self) -> dict[str, Any]:
        return {**user(BOT_USER_ID, "meetnow"), "bot": True, "flags": 0, "verified": True}

    # Lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        r = app.router
        r.add_get("/gateway", self._gateway)
        r.add_get(API_PREFIX + "/users/@me", self._users_me)
        r.add_get(API_PREFIX + "/oauth2/applications/@me", self._application)
        r.add_get(API_PREFIX + "/applications/@me", self._application)
        r.add_get(API_PREFIX + "/gateway/bot", self._gateway_bot)
        r.add_get(API_PREFIX + "/gateway", self._gateway_plain)
        r.add_put(API_PREFIX + "/applications/{app}/commands", self._put_commands)
        r.add_put(API_PREFIX + "/applications/{app}/guilds/{guild}/commands", self._put_commands)
        r.add_post(API_PREFIX + "/interactions/{id}/{token}/callback", self._callback)
        r.add_get(API_PREFIX + "/webhooks/{app}/{token}/messages/@original", self._get_original)
        r.add_patch(API_PREFIX + "/webhooks/{app}/{token}/messages/@original", self._edit_original)
        r.add_post(API_PREFIX + "/webhooks/{app}/{token}", self._followup)
        r.add_patch(API_PREFIX + "/channels/{channel}/messages/{message}", self._edit_channel)
        r.add_route("*", API_PREFIX + "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # Test helpers --------------------------------------------------------------------------------

    def fail(self, route: str, failure: Failure, times: int = 1) -> None:
        """Make the next ``times`` requests to ``route`` fail. Routes: ``users_me``,
        ``callback``, ``webhook_get``, ``webhook_patch``, ``followup``, ``channel_patch``,
        ``commands``."""
        self.failures.setdefault(route, []).extend([failure] * times)

    @property
    def connected_gateways(self) -> int:
        """How many gateway websockets are open now."""
        return sum(1 for connection in self.gateway_connections if connection.closed_at is None)

    def calls_to(self, route: str) -> list[Call]:
        return [call for call in self.calls if call.route == route]

    async def wait_for(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``check()`` is truthy (calls are re-checked as requests arrive)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the fake Discord did not see what the test waited for")
            async with self.call_added:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.call_added.wait(), min(remaining, 0.1))

    def message_for(self, token: str) -> dict[str, Any] | None:
        """The message an interaction's answer created (by the interaction token)."""
        message_id = self._by_token.get(token)
        return self.messages.get(message_id) if message_id is not None else None

    def expire(self, token: str) -> None:
        """Interaction token older than 15 minutes: webhook calls with it get 401 (50027)."""
        self.expired_tokens.add(token)

    def interaction_payload(
        self,
        *,
        topic: str | None = None,
        invite: dict[str, Any] | None = None,
        invoker: dict[str, Any] | None = None,
        name: str = "meetnow",
        guild_id: int = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        app_permissions: int = ALL_PERMISSIONS,
        lobby: bool | None = None,
        duration: str | None = None,
        locale: str = "en-US",
        guild_locale: str | None = "en-US",
    ) -> dict[str, Any]:
        """An APPLICATION_COMMAND interaction for ``/meetnow``, shaped as Discord sends it
        (``duration`` is the ``for`` option; ``locale`` the invoker's client language,
        ``guild_locale`` the server's, None: left out as in a DM)."""
        options: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        if topic is not None:
            options.append({"name": "topic", "type": 3, "value": topic})
        if lobby is not None:
            options.append({"name": "lobby", "type": 5, "value": lobby})
        if duration is not None:
            options.append({"name": "for", "type": 3, "value": duration})
        if invite is not None:
            options.append({"name": "invite", "type": 6, "value": invite["id"]})
            invited_member = {k: v for k, v in member(invite).items() if k != "user"}
            resolved = {
                "users": {invite["id"]: invite},
                "members": {invite["id"]: invited_member},
            }
        data: dict[str, Any] = {
            "id": str(COMMAND_ID),
            "name": name,
            "type": 1,
            "options": options,
            "guild_id": str(guild_id),
        }
        if resolved:
            data["resolved"] = resolved
        payload = self._interaction(2, data, invoker, guild_id, channel_id, app_permissions)
        return with_locales(payload, locale, guild_locale)

    def component_payload(
        self,
        message: dict[str, Any],
        custom_id: str,
        clicker: dict[str, Any],
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """A MESSAGE_COMPONENT interaction: ``clicker`` clicked the button ``custom_id`` of
        ``message`` (which carries the message as it is now, as Discord does)."""
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._interaction(
            3, data, clicker, int(message["guild_id"]), int(message["channel_id"]), ALL_PERMISSIONS
        )
        payload["message"] = json.loads(json.dumps(message))
        return with_locales(payload, locale, payload["guild_locale"])

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        invoker: dict[str, Any] | None,
        guild_id: int,
        channel_id: int,
        app_permissions: int,
    ) -> dict[str, Any]:
        interaction_id = next(self._ids)
        invoker = invoker or user(1_300_000_000_000_000_001, "starter", "Starter")
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(APPLICATION_ID),
            "type": kind,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": "general",
                "position": 0,
                "parent_id": None,
                "topic": None,
                "nsfw": False,
                "rate_limit_per_user": 0,
                "last_message_id": None,
                "flags": 0,
                "permissions": str(ALL_PERMISSIONS),
            },
            "member": member(invoker),
            "token": f"interaction-token-{interaction_id}-SECRET",
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(app_permissions),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        self.interactions[interaction_id] = payload
        return payload

    async def send_interaction(self, **kwargs: Any) -> dict[str, Any]:
        """Send an INTERACTION_CREATE for ``/meetnow`` over the gateway (after READY)."""
        payload = self.interaction_payload(**kwargs)
        await self.dispatch("INTERACTION_CREATE", payload, interaction_id=int(payload["id"]))
        return payload

    async def send_component(
        self,
        message: dict[str, Any],
        custom_id: str,
        clicker: dict[str, Any],
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """Send a click on a button of ``message`` over the gateway."""
        payload = self.component_payload(message, custom_id, clicker, locale)
        await self.dispatch("INTERACTION_CREATE", payload, interaction_id=int(payload["id"]))
        return payload

    async def dispatch(self, event: str, data: Any, *, interaction_id: int | None = None) -> None:
        await asyncio.wait_for(self.ready.wait(), 10)
        assert self._ws is not None
        self._seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self._seq, "d": data})
        if interaction_id is not None:
            self.sent_at[interaction_id] = time.perf_counter()
        await self._ws.send_str(frame)

    def create_answer(self, payload: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        """What Discord does with an HTTP endpoint's response: post the answer as a message."""
        message = self.respond(payload, response)
        assert message is not None
        return message

    def respond(self, payload: dict[str, Any], response: dict[str, Any]) -> dict[str, Any] | None:
        """What Discord does with an HTTP endpoint's response to an interaction: type 4 posts a
        message (the answer, or an ephemeral one), type 7 updates the clicked message, type 6
        changes nothing. Returns the message posted or updated."""
        self._responded.add(int(payload["id"]))
        return self._apply_callback(payload, response["type"], response.get("data") or {})

    def _apply_callback(
        self, interaction: dict[str, Any], kind: int, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        if kind in (4, 5):
            message = self._new_message(interaction, data)
            if kind == 5:
                message["flags"] = (data.get("flags") or 0) | 128
            self._by_token[interaction["token"]] = int(message["id"])
            return message
        if kind == 7:
            message = self.messages[int(interaction["message"]["id"])]
            self._apply_edit("component_update", message, data)
            self._by_token[interaction["token"]] = int(message["id"])
            return message
        return None

    # Internals ----------------------------------------------------------------------------------

    async def _record(self, request: web.Request, route: str) -> tuple[Call, web.Response | None]:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        call = Call(
            route,
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            body,
            time.perf_counter(),
        )
        self.calls.append(call)
        failures = self.failures.get(route)
        failure = failures.pop(0).response() if failures else None
        return call, failure

    async def _done(self, call: Call, response: web.Response) -> web.Response:
        call.status = response.status
        async with self.call_added:
            self.call_added.notify_all()
        return response

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    def _new_message(self, interaction: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        message_id = next(self._ids)
        message = {
            "id": str(message_id),
            "channel_id": interaction["channel_id"],
            "guild_id": interaction.get("guild_id"),
            "author": self.bot_user,
            "content": data.get("content", ""),
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": data.get("embeds", []),
            "components": data.get("components", []),
            "allowed_mentions": data.get("allowed_mentions"),
            "pinned": False,
            "type": 20,
            "flags": data.get("flags", 0),
            "webhook_id": str(APPLICATION_ID),
            "application_id": str(APPLICATION_ID),
        }
        self.messages[message_id] = message
        return message

    def _apply_edit(self, route: str, message: dict[str, Any], body: dict[str, Any]) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key]
        message["edited_timestamp"] = TIMESTAMP
        self.edits.append((route, int(message["id"]), body))

    async def _users_me(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "users_me")
        if failure is None and not self._authorized(request):
            failure = reply({"message": "401: Unauthorized", "code": 0}, 401)
        return await self._done(call, failure or reply(self.bot_user))

    async def _application(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "application")
        return await self._done(
            call,
            failure
            or reply(
                {
                    "id": str(APPLICATION_ID),
                    "name": "meetnow",
                    "icon": None,
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": user(1_300_000_000_000_000_099, "owner"),
                    "team": None,
                    "verify_key": "00" * 32,
                    "flags": 0,
                    "interactions_endpoint_url": None,
                }
            ),
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "gateway_bot")
        if failure is None and not self._authorized(request):
            failure = reply({"message": "401: Unauthorized", "code": 0}, 401)
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return await self._done(
            call,
            failure or reply({"url": self.gateway_url, "shards": 1, "session_start_limit": limit}),
        )

    async def _gateway_plain(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "gateway")
        return await self._done(call, failure or reply({"url": self.gateway_url}))

    async def _put_commands(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "commands")
        if failure is None and not self._authorized(request):
            failure = reply({"message": "401: Unauthorized", "code": 0}, 401)
        if failure is not None:
            return await self._done(call, failure)
        guild = request.match_info.get("guild")
        registered = [
            {
                "id": str(COMMAND_ID + index),
                "application_id": str(APPLICATION_ID),
                "version": str(COMMAND_ID),
                "default_member_permissions": None,
                "nsfw": False,
                **({"guild_id": guild} if guild else {}),
                **command,
            }
            for index, command in enumerate(call.body or [])
        ]
        self.commands[int(guild) if guild else None] = registered
        return await self._done(call, reply(registered))

    async def _callback(self, request: web.Request) -> web.Response:
        received = time.perf_counter()
        call, failure = await self._record(request, "callback")
        if failure is not None:
            return await self._done(call, failure)
        interaction_id = int(request.match_info["id"])
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction["token"] != request.match_info["token"]:
            return await self._done(
                call, reply({"message": "Unknown interaction", "code": 10062}, 404)
            )
        if interaction_id in self._responded:
            return await self._done(
                call,
                reply(
                    {"message": "Interaction has already been acknowledged.", "code": 40060}, 400
                ),
            )
        self._responded.add(interaction_id)
        self.callback_at[interaction_id] = received
        kind = call.body["type"]
        data = call.body.get("data") or {}
        message = self._apply_callback(interaction, kind, data)
        if request.query.get("with_response") not in ("1", "true", "True"):
            return await self._done(call, web.Response(status=204))
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(interaction_id),
                "type": interaction["type"],
                "activity_instance_id": None,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
            },
            "resource": {"type": kind, **({"message": message} if message else {})},
        }
        return await self._done(call, reply(answer))

    def _webhook_message(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        token = request.match_info["token"]
        if request.match_info["app"] != str(APPLICATION_ID):
            return None, reply({"message": "Unknown Webhook", "code": 10015}, 404)
        if token in self.expired_tokens:
            return None, token_expired().response()
        message = self.message_for(token)
        if message is None:
            return None, reply({"message": "Unknown Message", "code": 10008}, 404)
        return message, None

    async def _get_original(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "webhook_get")
        if failure is not None:
            return await self._done(call, failure)
        message, error = self._webhook_message(request)
        return await self._done(call, error or reply(message))

    async def _edit_original(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "webhook_patch")
        if failure is not None:
            return await self._done(call, failure)
        message, error = self._webhook_message(request)
        if error is not None or message is None:
            return await self._done(call, error or reply({}, 500))
        self._apply_edit("webhook_patch", message, call.body or {})
        return await self._done(call, reply(message))

    async def _followup(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "followup")
        if failure is not None:
            return await self._done(call, failure)
        token = request.match_info["token"]
        if token in self.expired_tokens:
            return await self._done(call, token_expired().response())
        interaction = next((i for i in self.interactions.values() if i["token"] == token), None)
        # Like Discord: no follow-up before the interaction has its answer.
        if interaction is None or int(interaction["id"]) not in self._responded:
            return await self._done(call, reply({"message": "Unknown Webhook", "code": 10015}, 404))
        message = self._new_message(interaction, call.body or {})
        self.followups.append(message)
        return await self._done(call, reply(message))

    async def _edit_channel(self, request: web.Request) -> web.Response:
        call, failure = await self._record(request, "channel_patch")
        if failure is None and not self._authorized(request):
            failure = reply({"message": "401: Unauthorized", "code": 0}, 401)
        if failure is not None:
            return await self._done(call, failure)
        message = self.messages.get(int(request.match_info["message"]))
        if message is None or message["channel_id"] != request.match_info["channel"]:
            return await self._done(call, reply({"message": "Unknown Message", "code": 10008}, 404))
        self._apply_edit("channel_patch", message, call.body or {})
        return await self._done(call, reply(message))

    async def _unknown(self, request: web.Request) -> web.Response:
        call, _ = await self._record(request, "unknown")
        return await self._done(call, reply({"message": "404: Not Found", "code": 0}, 404))

    # Gateway ------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        await ws.prepare(request)
        self._sockets.add(ws)
        self.gateway_queries.append(dict(request.query))
        connection = GatewayConnection((peer[0], peer[1]) if peer else ("", 0), time.monotonic())
        self.gateway_connections.append(connection)
        self.most_gateways_at_once = max(self.most_gateways_at_once, self.connected_gateways)
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": 10,
                        "s": None,
                        "t": None,
                        "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                    }
                )
            )
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op = message.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11, "s": None, "t": None, "d": None}))
                elif op == 2:
                    self.identify = message["d"]
                    if message["d"].get("token") != self.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    self._ws = ws
                    self._seq += 1
                    ready = {
                        "v": 10,
                        "user": self.bot_user,
                        "session_id": "fake-session",
                        "resume_gateway_url": self.gateway_url,
                        "application": {"id": str(APPLICATION_ID), "flags": 0},
                        "guilds": [],
                        "private_channels": [],
                        "relationships": [],
                        "shard": [0, 1],
                        "_trace": ["fake-discord"],
                    }
                    await ws.send_str(
                        json.dumps({"op": 0, "t": "READY", "s": self._seq, "d": ready})
                    )
                    self.ready.set()
                    connection.identified_at = time.monotonic()
                elif op == 6:
                    await ws.send_str(json.dumps({"op": 9, "s": None, "t": None, "d": False}))
        finally:
            connection.closed_at = time.monotonic()
            self._sockets.discard(ws)
            if self._ws is ws:
                self._ws = None
                self.ready.clear()
        return ws
