"""The cards of ``/meetnow`` calls: where each one is, and which room events edit it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from bot.core import CallSummary, ChatCards
from bot.i18n import FALLBACK_LANGUAGE, available_languages
from signaling.rooms import Participant, Room

from .embeds import Edit, ended_embed, live_edit
from .rest import describe

if TYPE_CHECKING:
    from .adapter import DiscordAdapter

__all__ = ["DiscordCard", "DiscordCards", "log_card"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")


@dataclass(eq=False)
class DiscordCard:
    """Where one call's card is, and how to reach it."""

    starter_id: int
    application_id: int
    channel_id: int | None
    issued_at: float
    """Clock time the interaction arrived: its token works for 15 minutes from then."""
    token: str = field(repr=False)
    """The interaction token (a secret for 15 minutes; never kept: empty after a restart)."""
    interaction: discord.Interaction[Any] | None = field(default=None, repr=False)
    """Gateway cards: the discord.py interaction; None for the HTTP endpoint."""
    message_id: int | None = None
    posted: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set once the answer to the command went out (or failed: then ``dead``)."""
    dead: bool = False
    """Nothing more can be edited (answer failed, message deleted, no way left to edit)."""
    via_interaction: bool = True
    """Still editing through the interaction token."""
    pending: int = 0
    """Join/leave updates scheduled and not run yet: only the last one edits."""
    logged: set[str] = field(default_factory=set, repr=False)
    """Failures already logged for this card (each is logged once)."""
    kept: bool = False
    """Its address (channel and message id, never the token) is kept with its room."""
    language: str = FALLBACK_LANGUAGE
    """The card's catalog: the server's (``guild_locale``) if the interaction said it, else the
    author's (docs/discord.md). Kept with the address, so a restart keeps the card's words."""
    reply_language: str = FALLBACK_LANGUAGE
    """The author's catalog (the interaction's ``locale``), for what only they see."""


def log_card(card: DiscordCard, key: str, message: str, error: BaseException | None) -> None:
    """A warning about one card, logged once per card and ``key``."""
    if key in card.logged:
        return
    card.logged.add(key)
    if error is None:
        logger.warning("discord: %s", message)
    else:
        logger.warning("discord: %s: %s", message, describe(error))


class DiscordCards(ChatCards[DiscordCard]):
    """The cards of ``/meetnow`` calls, kept up to date from room events."""

    origin = "discord"

    def __init__(self, adapter: DiscordAdapter) -> None:
        super().__init__(adapter.port)
        self.adapter = adapter

    # Several joins in a row need one edit: count what is queued and let the last one edit.
    def participant_joined(self, room: Room, participant: Participant) -> None:
        self._count_pending(room)
        super().participant_joined(room, participant)

    def participant_left(self, room: Room, participant: Participant) -> None:
        self._count_pending(room)
        super().participant_left(room, participant)

    def participant_waiting(self, room: Room, participant: Participant) -> None:
        self._count_pending(room)
        super().participant_waiting(room, participant)

    def waiting_resolved(self, room: Room, participant: Participant, admitted: bool) -> None:
        self._count_pending(room)
        super().waiting_resolved(room, participant, admitted)

    def room_changed(self, room: Room) -> None:
        # The lobby switched on or off in the call: the card says which.
        self._count_pending(room)
        self._schedule(room, lambda card: self._refresh(card, room))

    def _count_pending(self, room: Room) -> None:
        card = self.card(room.id)
        if card is not None and room.origin == self.origin:
            card.pending += 1

    # Across a restart ------------------------------------------------------------------------

    def keep_address(self, room: Room, card: DiscordCard) -> None:
        """Once the card's message id is known, keep where it is with its room (once per card),
        so :meth:`restore` finds it after a restart and the bot token edits it from then on."""
        if card.kept or card.dead or card.message_id is None or card.channel_id is None:
            return
        card.kept = True
        self.remember(room, card)

    def reference(self, card: DiscordCard) -> dict[str, Any] | None:
        # Never the interaction token: a secret, and useless 15 minutes after the command.
        # Snowflakes as strings, as Discord writes them (JSON numbers lose digits elsewhere).
        if card.message_id is None or card.channel_id is None:
            return None
        return {
            "channel_id": str(card.channel_id),
            "message_id": str(card.message_id),
            "starter_id": str(card.starter_id),
            "application_id": str(card.application_id),
            "language": card.language,
        }

    def from_reference(self, room: Room, reference: dict[str, Any]) -> DiscordCard | None:
        if self.adapter.settings.discord_token is None:
            return None  # no token left to edit it with: the interaction's was never kept
        card = DiscordCard(
            starter_id=int(reference["starter_id"]),
            application_id=int(reference["application_id"]),
            channel_id=int(reference["channel_id"]),
            issued_at=self.adapter.clock(),
            token="",
            message_id=int(reference["message_id"]),
            via_interaction=False,
            kept=True,
        )
        language = reference.get("language")  # absent in addresses kept before languages
        if language in available_languages():
            card.language = card.reply_language = language
        card.posted.set()
        return card

    # Updates from room events ----------------------------------------------------------------

    def live_edit(self, card: DiscordCard, room: Room) -> Edit:
        return live_edit(room, card.starter_id, self.room_url(room), card.language)

    async def joined(self, card: DiscordCard, room: Room, participant: Participant) -> None:
        await self._refresh(card, room)

    async def left(self, card: DiscordCard, room: Room, participant: Participant) -> None:
        await self._refresh(card, room)

    async def knocked(self, card: DiscordCard, room: Room, participant: Participant) -> None:
        await self._refresh(card, room)

    async def knock_answered(
        self, card: DiscordCard, room: Room, participant: Participant, admitted: bool
    ) -> None:
        await self._refresh(card, room)

    async def ended(self, card: DiscordCard, room: Room, summary: CallSummary) -> None:
        try:
            await self.adapter.deliver(
                card,
                Edit(ended_embed(room, card.starter_id, summary, card.language), None),
            )
        finally:
            card.interaction = None
            card.dead = True

    async def _refresh(self, card: DiscordCard, room: Room) -> None:
        card.pending = max(0, card.pending - 1)
        if card.pending:
            return  # a later update is queued; it shows this state too
        await self.adapter.deliver(card, self.live_edit(card, room))
        self.keep_address(room, card)  # the first edit may be what told us the message id
