"""Admit / Deny on a card: one answer for both transports, through the shared
:meth:`bot.core.ChatCards.host_click` (only the card's host may answer a knock)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.i18n import FALLBACK_LANGUAGE, text

from .cards import DiscordCard, DiscordCards
from .embeds import KNOCK_PATTERN, Edit

__all__ = ["ClickAnswer", "answer_click"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")


@dataclass
class ClickAnswer:
    """The answer to a click on Admit / Deny: an ephemeral ``text`` for the clicker alone, or
    ``edit``, the card's new state, shown at once by updating the message (callback type 7)."""

    text: str | None = None
    edit: Edit | None = None


async def answer_click(
    cards: DiscordCards,
    user_id: int,
    message_id: int | None,
    custom_id: str,
    language: str = FALLBACK_LANGUAGE,
) -> ClickAnswer:
    """A click on a card's button: only the card's host (who ran ``/meetnow``) can answer a
    knock. Everyone else gets an ephemeral refusal, in the clicker's ``language`` (their
    interaction's ``locale``), and nothing changes."""
    match = KNOCK_PATTERN.fullmatch(custom_id)
    if match is None:
        return ClickAnswer(text(language, "chat.discord.unknown_button"))
    room_id, participant_id = match["room"], match["participant"]

    def refuse_clicker(card: DiscordCard) -> str | None:
        if message_id is not None and card.message_id not in (None, message_id):
            return text(language, "chat.discord.wrong_message")
        if user_id != card.starter_id:
            logger.info("discord: a click on Admit/Deny by someone other than the host: refused")
            return text(language, "chat.core.not_host")
        return None

    admit = match["action"] == "admit"
    click = await cards.host_click(room_id, participant_id, admit, refuse_clicker, language)
    if click.card is None or click.room is None:
        return ClickAnswer(click.text)
    card, room = click.card, click.room
    if click.text is not None and not click.no_longer_waiting:
        return ClickAnswer(click.text)
    # Answered now, or earlier (in the call, another click) or given up: show the card as is.
    return ClickAnswer(edit=cards.live_edit(card, room))
