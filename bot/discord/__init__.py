"""The Discord adapter: ``/meetnow`` posts a call card with a Join link, kept up to date.

Two transports reach one command handler (:meth:`DiscordAdapter.start_call`):

- **The gateway bot** (``MEETNOW_DISCORD_TOKEN``): a discord.py :class:`~discord.AutoShardedClient`
  with the ``guilds`` intent only (slash commands need no privileged intent). It discovers its
  gateway through ``GET /gateway/bot`` on ``MEETNOW_DISCORD_API_URL``, so pointing that setting at
  another place (a test fake) moves the whole bot. discord.py keeps its REST base in the class
  attribute :attr:`discord.http.Route.BASE`, which this adapter sets: it is **process-wide**, one
  Discord API per process.
- **The HTTP interactions endpoint** (``MEETNOW_DISCORD_PUBLIC_KEY``): ``POST /discord/interactions``
  on meetnow's own web server, every request checked against its Ed25519 signature, its
  ``X-Signature-Timestamp`` within 5 minutes of our clock, and accepted once (a replay of the same
  signed request is refused: :class:`~bot.core.SignedRequestGuard`).

The card is the interaction's answer: an embed (topic, who started it, who is in) and a link
button "Join". :class:`DiscordCards` edits it as people come and go and, at the end, to
``Ended · 23 min · 4 people`` without the button. Interaction tokens last 15 minutes: edits go
through the interaction while its token is fresh, then through the bot's channel message API
(which needs the bot token; without one the card stops changing and a log line says why).

Against zoombombing: whoever ran ``/meetnow`` is the host. They alone get the host link, in an
ephemeral follow-up (never in the channel, never in a log). ``lobby:true`` makes newcomers wait:
the card then shows who waits, with Admit / Deny buttons that only the host's clicks can use
(:meth:`DiscordAdapter.click`; the gateway bot gets the clicks through the dynamic item
:class:`KnockButton`, the HTTP endpoint as signed MESSAGE_COMPONENT interactions).
``for:2h`` ends the link's welcome after two hours (at most 7 days), and room creation is rate
limited per user and per guild (``ServerLimits.check_chat_creation``).

Nothing here keeps room state; logs carry no token, name, topic, link or room id.

Modules, by concern: :mod:`.commands` (``/meetnow`` and its handler), :mod:`.gateway` (the
bot), :mod:`.interactions` (the HTTP endpoint), :mod:`.lobby` (Admit / Deny), :mod:`.cards` and
:mod:`.delivery` (the cards and their edits), :mod:`.embeds` (rendering), :mod:`.rest` (REST
calls, :class:`DiscordApiError`), :mod:`.types` (wire payloads), :mod:`.adapter` (what ties them).
Inside this package ``import discord`` is the discord.py library: Python 3 imports are absolute,
and this package is ``bot.discord``, never a top-level ``discord``.
"""

from __future__ import annotations

from aiohttp import web

from bot.core import parse_duration
from bot.discord_settings import DiscordSettings
from bot.port import ChatPort

from .adapter import DiscordAdapter
from .cards import DiscordCard, DiscordCards
from .commands import COMMAND, INVITE_PERMISSIONS, CallRequest, invite_url
from .embeds import KNOCK_PATTERN, live_edit
from .gateway import KnockButton, quiet_discord_debug
from .interactions import InteractionsEndpoint
from .lobby import ClickAnswer
from .rest import DiscordApiError

__all__ = [
    "COMMAND",
    "DISCORD",
    "INVITE_PERMISSIONS",
    "KNOCK_PATTERN",
    "CallRequest",
    "ClickAnswer",
    "DiscordAdapter",
    "DiscordApiError",
    "DiscordCard",
    "DiscordCards",
    "KnockButton",
    "install_discord",
    "invite_url",
    "live_edit",
    "parse_duration",
]

DISCORD: web.AppKey[DiscordAdapter] = web.AppKey("discord", DiscordAdapter)
"""The adapter on the aiohttp app (tests reach its cards through it)."""


def install_discord(app: web.Application, port: ChatPort, settings: DiscordSettings) -> None:
    """Mount the Discord adapter: the gateway bot when ``MEETNOW_DISCORD_TOKEN`` is set, the
    HTTP interactions endpoint when ``MEETNOW_DISCORD_PUBLIC_KEY`` is."""
    quiet_discord_debug()
    adapter = DiscordAdapter(port, settings)
    app[DISCORD] = adapter
    public_key = settings.discord_public_key
    if public_key is not None:
        adapter.endpoint = InteractionsEndpoint.from_hex(adapter, public_key)
    if adapter.endpoint is not None:
        app.router.add_post("/discord/interactions", adapter.endpoint.handle)
    app.cleanup_ctx.append(adapter.lifecycle)
