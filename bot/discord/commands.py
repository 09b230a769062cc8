"""``/meetnow`` itself: its definition, its invite link, and the handler both transports share."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from bot.core import parse_duration
from bot.i18n import FALLBACK_LANGUAGE, localized, server_text, text
from bot.options import parse_options
from bot.port import ChatPort, ChatRoomRequest
from signaling.errors import RateLimited, TooManyRooms
from signaling.rooms import Room

from .embeds import Reply, live_embed
from .types import ApplicationCommand

__all__ = ["COMMAND", "INVITE_PERMISSIONS", "CallRequest", "host_link_text", "invite_url"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")

VIEW_CHANNEL: Final = 1 << 10
SEND_MESSAGES: Final = 1 << 11
EMBED_LINKS: Final = 1 << 14
INVITE_PERMISSIONS: Final = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS
"""19456. meetnow only answers ``/meetnow`` and edits that answer; after 15 minutes it edits it
with the bot token, which needs the channel to be visible, and embeds need Embed Links."""

COMMAND_NAME: Final = "meetnow"
COMMAND_DESCRIPTION: Final = text(FALLBACK_LANGUAGE, "chat.discord.command_description")
TOPIC_DESCRIPTION: Final = text(FALLBACK_LANGUAGE, "chat.discord.topic_description")
INVITE_DESCRIPTION: Final = text(FALLBACK_LANGUAGE, "chat.discord.invite_description")
LOBBY_DESCRIPTION: Final = text(FALLBACK_LANGUAGE, "chat.discord.lobby_description")
FOR_DESCRIPTION: Final = text(FALLBACK_LANGUAGE, "chat.discord.for_description")

# Discord names most languages by their primary subtag ("fr", "de"); these few it names by region.
_DISCORD_LOCALES: Final = {"es": "es-ES", "pt": "pt-BR", "sv": "sv-SE", "zh": "zh-CN"}


def discord_localizations(key: str) -> dict[str, str]:
    """Every other catalog's words for ``key``, by Discord locale (``description_localizations``)."""
    return {
        _DISCORD_LOCALES.get(language, language): words
        for language, words in localized(key).items()
    }


COMMAND: Final[ApplicationCommand] = {
    "name": COMMAND_NAME,
    "type": 1,
    "description": COMMAND_DESCRIPTION,
    "description_localizations": discord_localizations("chat.discord.command_description"),
    "options": [
        {
            "type": option_type,
            "name": name,
            "description": text(FALLBACK_LANGUAGE, f"chat.discord.{name}_description"),
            "description_localizations": discord_localizations(f"chat.discord.{name}_description"),
            "required": False,
        }
        for option_type, name in ((3, "topic"), (6, "invite"), (5, "lobby"), (3, "for"))
    ],
    "contexts": [0],
    "integration_types": [0],
}
"""``/meetnow`` as Discord's API describes it: what the gateway bot registers, and what
``PUT /applications/{id}/commands`` takes for an HTTP-endpoint-only setup (docs/discord.md)."""


def invite_url(application_id: int | str, permissions: int = INVITE_PERMISSIONS) -> str:
    """The link that adds the bot to a server (the ``bot`` scope includes slash commands)."""
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot&permissions={permissions}"
    )


DURATION_HELP: Final = text(FALLBACK_LANGUAGE, "chat.discord.duration_help")

TYPED_OPTIONS_HINT: Final = text(FALLBACK_LANGUAGE, "chat.discord.typed_options_hint")
"""Follows the shared parser's answer to an option typed wrong in the topic."""


@dataclass(frozen=True)
class CallRequest:
    """One ``/meetnow``, whichever transport brought it."""

    user_id: int
    """Who ran it: the host."""
    guild_id: int | None
    topic: str | None = None
    invite_id: int | None = None
    lobby: bool = False
    duration: str | None = None
    """The ``for`` option as typed."""
    language: str = FALLBACK_LANGUAGE
    """The catalog the author's replies come from (the interaction's ``locale``)."""
    card_language: str = FALLBACK_LANGUAGE
    """The catalog of the card the whole channel sees (the interaction's ``guild_locale``,
    else its ``locale``: docs/discord.md)."""


def start_call(port: ChatPort, request: CallRequest) -> tuple[Room | None, Reply]:
    """Create the room and the answer; no room (and an ephemeral answer only the author sees)
    for a bad ``for``, a rate limit, or a full server."""
    # `/meetnow topic:--lobby --for 2h Standup` works as in Slack (the shared parser, an
    # unknown `--word` refused the same way); the structured options win if both are given.
    typed = parse_options(request.topic or "", language=request.language)
    if typed.error is not None:
        port.count_command("discord", "invalid")
        return None, Reply(
            content=f"{typed.error} {text(request.language, 'chat.discord.typed_options_hint')}",
            ephemeral=True,
        )
    lobby = typed.lobby or request.lobby
    topic = typed.rest
    lifetime = typed.lifetime_seconds
    if request.duration is not None:
        lifetime = parse_duration(request.duration)
        if lifetime is None:
            port.count_command("discord", "invalid")
            return None, Reply(
                content=text(request.language, "chat.discord.duration_help"), ephemeral=True
            )
    org = str(request.guild_id) if request.guild_id is not None else "dm"
    try:
        room = port.create_room(
            ChatRoomRequest(
                platform="discord",
                organisation=org,
                user=str(request.user_id),
                topic=topic or None,
                lobby=lobby,
                lifetime_seconds=lifetime,
            )
        )
    except RateLimited as error:
        logger.warning("discord: /meetnow refused: rate limited")
        port.count_command("discord", "rate_limited")
        return None, Reply(content=server_text(request.language, str(error)), ephemeral=True)
    except TooManyRooms as error:
        logger.warning("discord: /meetnow refused: too many open rooms")
        port.count_command("discord", "server_full")
        return None, Reply(content=server_text(request.language, str(error)), ephemeral=True)
    port.count_command("discord", "created")
    reply = Reply(
        embed=live_embed(room, request.user_id, request.card_language),
        join_url=port.room_url(room),
        language=request.card_language,
    )
    if request.invite_id is not None:
        reply.content = text(
            request.language, "chat.discord.invited", mention=f"<@{request.invite_id}>"
        )
        reply.mention = request.invite_id
    return room, reply


def host_link_text(host_link: str, language: str = FALLBACK_LANGUAGE) -> str:
    """The ephemeral follow-up for the command's author alone: a fresh host link."""
    return text(language, "chat.discord.host_link", link=host_link)
