"""Chat adapters: Slack and Discord, thin layers over the room service.

Each adapter turns ``/meetnow`` into one call of :meth:`signaling.rooms.RoomService.create_room`
and a message, and keeps that message up to date from the room service's events
(:class:`bot.core.ChatCards`). Adapters are only imported when their settings are present.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from signaling.server import MeetnowServer

__all__ = ["install_chat_adapters"]


def install_chat_adapters(app: web.Application, server: MeetnowServer) -> None:
    """Mount and start every adapter whose settings are present."""
    settings = server.settings
    if settings.slack_bot_token is not None:
        from .slack import install_slack

        install_slack(app, server)
    if settings.discord_token is not None or settings.discord_public_key is not None:
        from .discord import install_discord

        install_discord(app, server)
