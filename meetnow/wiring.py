"""The wiring: settings -> the signaling app -> the chat port -> each configured chat platform.

The one place that knows every part. ``signaling`` builds the web server and knows no chat
platform; each adapter in ``bot`` receives a :class:`bot.port.ChatPort` and its own settings.
Adding a platform means one entry in :data:`CHAT_PLATFORMS` (see docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from bot.port import ChatPort
from signaling.rooms import RoomService
from signaling.server import SERVER
from signaling.server import create_app as create_signaling_app

from .chat_port import ServerChatPort
from .settings import MeetnowSettings

__all__ = ["CHAT_PLATFORMS", "ChatPlatform", "create_app", "install_chat_platforms"]


def _install_slack(app: web.Application, port: ChatPort, settings: MeetnowSettings) -> None:
    from bot.slack import install_slack  # imported late: only when configured

    install_slack(app, port, settings)


def _install_discord(app: web.Application, port: ChatPort, settings: MeetnowSettings) -> None:
    from bot.discord import install_discord  # imported late: only when configured

    install_discord(app, port, settings)


@dataclass(frozen=True)
class ChatPlatform:
    """One chat platform meetnow can run: when it is on, and how to install it."""

    name: str
    enabled: Callable[[MeetnowSettings], bool]
    """Whether its settings turn it on."""
    install: Callable[[web.Application, ChatPort, MeetnowSettings], None]
    """Mount its routes and start it with the app (``install_*`` of its adapter)."""


CHAT_PLATFORMS: tuple[ChatPlatform, ...] = (
    ChatPlatform("slack", MeetnowSettings.slack_enabled, _install_slack),
    ChatPlatform("discord", MeetnowSettings.discord_enabled, _install_discord),
)
"""Every chat platform, in the order they are installed."""


def install_chat_platforms(
    app: web.Application, port: ChatPort, settings: MeetnowSettings
) -> list[str]:
    """Install every platform whose settings are present; their names."""
    installed = []
    for platform in CHAT_PLATFORMS:
        if platform.enabled(settings):
            platform.install(app, port, settings)
            installed.append(platform.name)
    return installed


def create_app(
    settings: MeetnowSettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    rooms: RoomService | None = None,
) -> web.Application:
    """The whole meetnow web application: the signaling server with its chat platforms."""
    settings = settings or MeetnowSettings()
    app = create_signaling_app(settings, clock=clock, rooms=rooms)
    install_chat_platforms(app, ServerChatPort.of(app[SERVER]), settings)
    return app
