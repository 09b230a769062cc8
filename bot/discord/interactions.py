"""The HTTP interactions endpoint (``MEETNOW_DISCORD_PUBLIC_KEY``): ``POST /discord/interactions``
on meetnow's own web server, every request checked against its Ed25519 signature, its
``X-Signature-Timestamp`` within 5 minutes of our clock, and accepted once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.i18n import language_for, text
from signaling.rooms import Room

from .cards import DiscordCard, log_card
from .commands import COMMAND_NAME, CallRequest
from .embeds import EPHEMERAL, Reply
from .rest import DiscordApiError, snowflake
from .types import InteractionResponse

if TYPE_CHECKING:
    from .adapter import DiscordAdapter

__all__ = ["InteractionsEndpoint"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")

MESSAGE_ID_RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 4.0)
"""When to ask Discord for the id of the message our answer created."""
MAX_INTERACTION_BYTES: Final = 64 * 1024
"""Largest interaction accepted (the app's own API limit is smaller)."""
HOST_LINK_RETRY_DELAYS: Final = (0.2, 0.5, 1.0, 2.0, 4.0)
"""When to send the host link (a follow-up works once Discord has our answer)."""
SUPPRESS_EMBEDS: Final = 1 << 2
"""Message flag: no link preview (nothing fetches the host link, not even Discord's previewer)."""

_INTERACTION_PING: Final = 1
_INTERACTION_COMMAND: Final = 2
_INTERACTION_COMPONENT: Final = 3
_COMPONENT_BUTTON: Final = 2
_CALLBACK_PONG: Final = 1
_CALLBACK_MESSAGE: Final = 4
_CALLBACK_UPDATE_MESSAGE: Final = 7


class InteractionsEndpoint:
    """``POST /discord/interactions``: signed PINGs, ``/meetnow`` and Admit / Deny clicks."""

    def __init__(self, adapter: DiscordAdapter, public_key: Ed25519PublicKey) -> None:
        self.adapter = adapter
        self._public_key = public_key

    @classmethod
    def from_hex(cls, adapter: DiscordAdapter, hex_key: str) -> InteractionsEndpoint | None:
        """The endpoint, or None (logged) when the key is not an Ed25519 public key."""
        try:
            public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key.strip()))
        except ValueError:
            logger.error(
                "discord: MEETNOW_DISCORD_PUBLIC_KEY is not an Ed25519 public key in hex "
                "(64 characters); POST /discord/interactions is off"
            )
            return None
        return cls(adapter, public_key)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether Discord signed ``timestamp + body`` (Ed25519, the application's public key)."""
        signature = headers.get("X-Signature-Ed25519")
        timestamp = headers.get("X-Signature-Timestamp")
        if not signature or not timestamp:
            return False
        try:
            self._public_key.verify(bytes.fromhex(signature), timestamp.encode() + body)
        except (ValueError, InvalidSignature):
            return False
        return True

    async def handle(self, request: web.Request) -> web.Response:
        """``POST /discord/interactions``."""
        body = await _read_limited(request, MAX_INTERACTION_BYTES)
        if body is None:
            return web.Response(status=413, text="request too large\n")
        if not self.verify(request.headers, body):
            return web.Response(status=401, text="invalid request signature\n")
        # Signed, but when? A captured request must not work again: not days later (stale
        # timestamp), nor within the window (seen already). No await until it is remembered.
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        if not self.adapter.requests.fresh(timestamp):
            return web.Response(status=401, text="stale request timestamp\n")
        if not self.adapter.requests.first_time(timestamp, body):
            return web.Response(status=401, text="replayed request\n")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return web.Response(status=400, text="invalid JSON\n")
        if not isinstance(payload, dict):
            return web.Response(status=400, text="invalid interaction\n")
        kind = payload.get("type")
        if kind == _INTERACTION_PING:
            return _json_response({"type": _CALLBACK_PONG})
        data = payload.get("data")
        if kind == _INTERACTION_COMPONENT and isinstance(data, dict):
            return await self._click(payload, data)
        if kind != _INTERACTION_COMMAND or not isinstance(data, dict):
            return web.Response(status=400, text="unsupported interaction\n")
        if data.get("name") != COMMAND_NAME:
            language = language_for(payload.get("locale"))
            reply = Reply(content=text(language, "chat.discord.unknown_command"), ephemeral=True)
            return _json_response({"type": _CALLBACK_MESSAGE, "data": reply.data()})
        return self._command(payload)

    def _command(self, payload: Mapping[str, Any]) -> web.Response:
        """A signed APPLICATION_COMMAND: ``/meetnow``, answered in the response itself."""
        configured = self.adapter.settings.discord_application_id
        try:
            command = _parse_command(payload, configured)
        except (KeyError, TypeError, ValueError):
            return web.Response(status=400, text="invalid interaction\n")
        if configured and configured.strip() != str(command.application_id):
            self.adapter.log_once(
                "application_id",
                "discord: MEETNOW_DISCORD_APPLICATION_ID differs from the application id Discord "
                "sends; using Discord's",
            )
        room, reply = self.adapter.start_call(command.request)
        if room is not None:
            card = self.adapter.open_card(
                room,
                command.request.user_id,
                command.application_id,
                command.channel_id,
                command.token,
                language=command.request.card_language,
                reply_language=command.request.language,
            )
            # Discord posts the answer once it has our response; edits before it would miss.
            card.posted.set()
            self.adapter.spawn(self._after_answer(card, room, command.permissions))
        return _json_response({"type": _CALLBACK_MESSAGE, "data": reply.data()})

    async def _click(self, payload: Mapping[str, Any], data: Mapping[str, Any]) -> web.Response:
        """A signed MESSAGE_COMPONENT interaction: a click on Admit / Deny."""
        custom_id = data.get("custom_id")
        try:
            user_id = int(_author(payload)["id"])
            message = payload.get("message")
            message_id = snowflake(message, "id") if isinstance(message, dict) else None
        except (KeyError, TypeError, ValueError):
            return web.Response(status=400, text="invalid interaction\n")
        if not isinstance(custom_id, str) or data.get("component_type") != _COMPONENT_BUTTON:
            return web.Response(status=400, text="invalid interaction\n")
        answer = await self.adapter.click(
            user_id, message_id, custom_id, language_for(payload.get("locale"))
        )
        if answer.edit is not None:
            return _json_response({"type": _CALLBACK_UPDATE_MESSAGE, "data": answer.edit.data()})
        reply = Reply(content=answer.text, ephemeral=True)
        return _json_response({"type": _CALLBACK_MESSAGE, "data": reply.data()})

    async def _after_answer(self, card: DiscordCard, room: Room, permissions: int | None) -> None:
        await self._send_host_link(card, room)
        if self.adapter.settings.discord_token is None:
            return  # no bot path: the message id would never be used
        for delay in MESSAGE_ID_RETRY_DELAYS:
            await asyncio.sleep(delay)
            if card.message_id is not None or card.dead:
                break
            try:
                message = await self.adapter.rest.call(
                    "GET", f"/webhooks/{card.application_id}/{card.token}/messages/@original"
                )
            except DiscordApiError as error:
                if error.status != 404:
                    log_card(card, "message_id", "could not look up the call message", error)
                    break
            except (aiohttp.ClientError, TimeoutError):
                continue
            else:
                card.message_id = snowflake(message, "id")
                self.adapter.cards.keep_address(room, card)  # still edited after a restart
                break
        await self.adapter.warn_if_blind(card, permissions)

    async def _send_host_link(self, card: DiscordCard, room: Room) -> None:
        """The host link as an ephemeral follow-up. A follow-up only works once Discord has
        posted our answer (which it does after our response): until then it is a 404."""
        body = {
            "content": self.adapter.host_link_text(room, card.reply_language),
            "flags": EPHEMERAL | SUPPRESS_EMBEDS,
            "allowed_mentions": {"parse": []},
        }
        error: BaseException | None = None
        for delay in HOST_LINK_RETRY_DELAYS:
            await asyncio.sleep(delay)
            if card.dead or self.adapter.cards.card(room.id) is not card:
                return
            try:
                await self.adapter.rest.call(
                    "POST", f"/webhooks/{card.application_id}/{card.token}", body
                )
                return
            except DiscordApiError as failed:
                error = failed
                if failed.status != 404:
                    break
            except (aiohttp.ClientError, TimeoutError) as failed:
                error = failed
        log_card(card, "host_link", "could not send the host link", error)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_response(data: InteractionResponse) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), content_type="application/json")


def _author(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Who sent an interaction: ``member.user`` in a guild, ``user`` elsewhere."""
    user: Mapping[str, Any] = payload["member"]["user"] if "member" in payload else payload["user"]
    return user


@dataclass(frozen=True)
class _HttpCommand:
    """The parts of a signed APPLICATION_COMMAND payload the handler uses."""

    request: CallRequest
    channel_id: int | None
    application_id: int
    token: str = field(repr=False)
    permissions: int | None
    """The app's permissions in the channel."""


def _parse_command(
    payload: Mapping[str, Any], configured_application_id: str | None
) -> _HttpCommand:
    data = payload["data"]
    options: dict[str, Any] = {}
    for option in data.get("options") or []:
        options[option.get("name")] = option.get("value")
    topic = options.get("topic")
    duration = options.get("for")
    invite = options.get("invite")
    guild_id = payload.get("guild_id")
    request = CallRequest(
        user_id=int(_author(payload)["id"]),
        guild_id=int(guild_id) if guild_id is not None else None,
        topic=topic if isinstance(topic, str) else None,
        invite_id=int(invite) if invite is not None else None,
        lobby=options.get("lobby") is True,
        duration=duration if isinstance(duration, str) else None,
        language=language_for(payload.get("locale")),
        # Seen by the whole channel: the server's language if Discord says it (docs/discord.md).
        card_language=language_for(payload.get("guild_locale") or payload.get("locale")),
    )
    channel_id = payload.get("channel_id") or (payload.get("channel") or {}).get("id")
    # The payload's own (signed) application id is the one its token belongs to.
    application_id = int(payload.get("application_id") or configured_application_id or "")
    token = payload["token"]
    if not isinstance(token, str) or not token:
        raise ValueError("no token")
    permissions = payload.get("app_permissions")
    return _HttpCommand(
        request=request,
        channel_id=int(channel_id) if channel_id is not None else None,
        application_id=application_id,
        token=token,
        permissions=int(permissions) if permissions is not None else None,
    )
