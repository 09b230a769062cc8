"""The card's buttons: *Join* (a link, only acknowledged) and the lobby's *Admit* / *Deny*, whose
clicks go through the shared host-click flow (:meth:`bot.core.ChatCards.host_click`): only the
command's author, from the same workspace, answers a knock."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck

from signaling.rooms import Room

from ..core import ChatCards
from ..i18n import FALLBACK_LANGUAGE, text
from .blocks import ADMIT_ACTION, lobby_message
from .card import SlackCard
from .web_api import Reply, SlackWebApi

__all__ = ["CardClicks", "as_dict", "knock_privately"]

logger = logging.getLogger("bot.slack")  # the adapter's one logger: its lines keep their name


class CardClicks:
    """Bolt listeners for the buttons on the cards."""

    def __init__(self, cards: ChatCards[SlackCard], web: SlackWebApi) -> None:
        self.cards = cards
        self.web = web

    async def on_join_click(self, ack: AsyncAck) -> None:
        """The Join button is a link: the browser opens it; Slack only wants the click acked."""
        await ack()

    async def on_knock_click(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        """*Admit* / *Deny* under "<name> is waiting": acknowledged at once; only the clicks of
        the command's author (same user, same workspace) answer the knock. Anyone else is told
        so, privately, and nothing changes."""
        await ack()
        try:
            await self._answer_click(body, action)
        except Exception as error:
            # Not bolt's handler: its log line would carry the error's text (links, names).
            logger.error("Slack: handling a lobby click failed (%s)", type(error).__name__)

    async def _answer_click(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        admit = action.get("action_id") == ADMIT_ACTION
        room_id, _, participant_id = str(action.get("value") or "").partition(":")
        clicker, team = as_dict(body.get("user")), as_dict(body.get("team"))
        user_id = str(clicker.get("id") or "")
        teams = {t for t in (clicker.get("team_id"), team.get("id")) if isinstance(t, str) and t}
        response_url = body.get("response_url")
        reply = Reply(
            url=response_url if isinstance(response_url, str) else None,
            channel=str(as_dict(body.get("channel")).get("id") or ""),
            user=user_id,
        )

        # The replies around a card speak its language (the host's: docs/slack.md).
        known = self.cards.card(room_id) if room_id else None
        language = known.language if known is not None else FALLBACK_LANGUAGE

        def refuse_clicker(card: SlackCard) -> str | None:
            if user_id == card.user and card.team in teams:
                return None
            logger.info("Slack: a click on Admit/Deny by someone other than the host: refused")
            return text(language, "chat.core.not_host")

        click = await self.cards.host_click(
            room_id, participant_id, admit, refuse_clicker, language
        )
        if click.card is None or click.room is None or click.refused:
            await self.web.reply(reply, click.text or text(language, "chat.core.ended"))
            return
        card, room = click.card, click.room
        ephemeral = bool(as_dict(body.get("container")).get("is_ephemeral"))
        if card.via_response_url and not ephemeral and reply.url is not None:
            # The card came through the command's response_url (five posts in 30 minutes); the
            # click brings a fresh one for the same message: the card's updates use it now.
            card.response_url, card.response_url_posts = reply.url, 0
            card.started = time.monotonic()
        if click.text is not None:
            await self.web.reply(reply, click.text)
        if ephemeral and reply.url is not None:
            # A message only the host sees (chat.update can't reach it): refresh it in place.
            message = {"replace_original": True, **lobby_message(room, card.language)}
            await self.web.post_response_url(reply.url, message)


async def knock_privately(web: SlackWebApi, card: SlackCard, room: Room) -> None:
    """The bot is not in the conversation of a Calls API card: the buttons go to the host
    alone, through the command's ``response_url`` (keeping its last post for the end)."""
    if not card.may_post_to_response_url(keep_last=True):
        return
    lobby = lobby_message(room, card.language)
    message = {"response_type": "ephemeral", "replace_original": False, **lobby}
    await web.respond(card, message)


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
