"""The adapter: what both transports share (the command handler, the clicks, the cards) and
its lifecycle on the aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import discord
from aiohttp import web

from bot.core import SignedRequestGuard
from bot.discord_settings import DiscordSettings
from bot.i18n import FALLBACK_LANGUAGE
from bot.port import ChatPort
from signaling.rooms import Room

from . import delivery
from .cards import DiscordCard, DiscordCards
from .commands import CallRequest, host_link_text, start_call
from .embeds import Edit, Reply
from .gateway import MeetnowBot, run_gateway
from .interactions import InteractionsEndpoint
from .lobby import ClickAnswer, answer_click
from .rest import DiscordRest

__all__ = ["DiscordAdapter"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")


class DiscordAdapter:
    """Both transports, the command handler, and the card edits."""

    def __init__(self, port: ChatPort, settings: DiscordSettings) -> None:
        self.port = port
        self.settings = settings
        self.api_url = self.settings.discord_api_url.rstrip("/")
        self.clock: Callable[[], float] = port.now
        """Measures interaction token age (the room service's clock, so tests can move it)."""
        self.cards = DiscordCards(self)
        self.client: MeetnowBot | None = None
        self.invite_url: str | None = None
        self.endpoint: InteractionsEndpoint | None = None
        """The HTTP interactions endpoint, when a valid public key is set."""
        self.requests = SignedRequestGuard()
        """Timestamp freshness and replays of signed HTTP interactions (wall clock, injectable:
        Discord's timestamps are real time, unlike the room service's clock)."""
        self.rest = DiscordRest(self.api_url)
        self._gateway: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._logged: set[str] = set()

    # The command handler and the clicks, one for both transports ---------------------------------

    def start_call(self, request: CallRequest) -> tuple[Room | None, Reply]:
        """Create the room and the answer (:func:`bot.discord.commands.start_call`)."""
        return start_call(self.port, request)

    def host_link_text(self, room: Room, language: str = FALLBACK_LANGUAGE) -> str:
        """The ephemeral follow-up for the command's author alone: a fresh host link."""
        return host_link_text(self.cards.host_link(room), language)

    async def click(
        self,
        user_id: int,
        message_id: int | None,
        custom_id: str,
        language: str = FALLBACK_LANGUAGE,
    ) -> ClickAnswer:
        """A click on a card's Admit / Deny (:func:`bot.discord.lobby.answer_click`)."""
        return await answer_click(self.cards, user_id, message_id, custom_id, language)

    def open_card(
        self,
        room: Room,
        user_id: int,
        application_id: int,
        channel_id: int | None,
        token: str,
        interaction: discord.Interaction[Any] | None = None,
        *,
        language: str = FALLBACK_LANGUAGE,
        reply_language: str = FALLBACK_LANGUAGE,
    ) -> DiscordCard:
        card = DiscordCard(
            starter_id=user_id,
            application_id=application_id,
            channel_id=channel_id,
            issued_at=self.clock(),
            token=token,
            interaction=interaction,
            language=language,
            reply_language=reply_language,
        )
        # Tracked before the answer goes out, so no join is missed; updates wait for ``posted``.
        self.cards.track(room, card)
        return card

    # Card edits ----------------------------------------------------------------------------------

    async def deliver(self, card: DiscordCard, edit: Edit) -> None:
        """Show ``edit`` on ``card`` (:func:`bot.discord.delivery.deliver`)."""
        await delivery.deliver(self, card, edit)

    async def warn_if_blind(self, card: DiscordCard, permissions: int | None) -> None:
        """Warn the user now if the bot will not be able to edit the card after 15 minutes."""
        await delivery.warn_if_blind(self, card, permissions)

    def ready_client(self) -> MeetnowBot | None:
        """The gateway bot, if it is logged in and open on this node (it edits cards after 15
        minutes; without it, REST with the bot token does)."""
        client = self.client
        if client is None or client.user is None or client.is_closed():
            return None
        return client

    def announce(self, url: str) -> None:
        """Print the invite URL once (``meetnow serve`` shows it)."""
        if self.invite_url is None:
            self.invite_url = url
            print(f"meetnow: invite the Discord bot with {url}", flush=True)

    def log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message)

    # Lifecycle -----------------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hold_gateway(self, client: MeetnowBot, token: str) -> None:
        """Run the gateway bot while this node is the one holding Discord's gateway (several
        nodes on Redis: one at a time; another takes over when it dies)."""
        async with self.port.single_holder("discord-gateway"):
            await run_gateway(client, token)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """``app.cleanup_ctx``: start the gateway bot in the background, stop it at shutdown."""
        token = self.settings.discord_token
        previous_base = discord.http.Route.BASE
        if token is not None:
            # Process-wide: discord.py reads its REST base (and so its gateway) from this.
            discord.http.Route.BASE = self.api_url
            self.client = MeetnowBot(self)
            self._gateway = asyncio.ensure_future(
                self._hold_gateway(self.client, token.get_secret_value())
            )
        if self.endpoint is not None:
            logger.info("discord: interactions endpoint on at POST /discord/interactions")
        if token is None and self.settings.discord_application_id:
            self.announce(
                f"https://discord.com/oauth2/authorize?client_id="
                f"{self.settings.discord_application_id}&scope=applications.commands"
            )
        # The cards of rooms that outlived a restart (a durable store): edited with the bot
        # token from now on, their interaction tokens having never been kept.
        await self.cards.restore()
        yield
        # Rooms in memory were closed before this: let their cards say "Ended" first. Durable
        # rooms go on (their cards too, after the restart): only pending edits are finished.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.cards.drained(), 5)
        if self.client is not None and not self.client.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), 10)
        if self._gateway is not None:
            self._gateway.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._gateway
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.rest.close()
        discord.http.Route.BASE = previous_base
