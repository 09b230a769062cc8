"""Slack's Calls API: the card as a native call (``calls.add`` and a ``call`` block, the way Zoom's
and Webex's Slack apps show theirs), its participants, its end, and the lobby's threaded message
under it (the ``call`` block is Slack's to draw, so the lobby's buttons can't go on it)."""

from __future__ import annotations

import logging
from typing import Any

from signaling.rooms import Participant, Room

from ..i18n import text
from .blocks import context_plain, lobby_message
from .card import SlackCard
from .web_api import AUTH_ERRORS, SlackFailure, SlackWebApi

__all__ = ["NO_CALLS_ERRORS", "SlackCalls"]

logger = logging.getLogger("bot.slack")  # the adapter's one logger: its lines keep their name

NO_CALLS_ERRORS = frozenset({"missing_scope", "not_allowed_token_type"})
"""``calls.add`` codes after which the Calls API is not tried again (no ``calls:write``)."""


class SlackCalls:
    """The Calls API side of the cards: a call per room while Slack lets the app make them."""

    def __init__(self, web: SlackWebApi) -> None:
        self.web = web
        self.available = True
        """Whether to try the Calls API; False once Slack said the app lacks ``calls:write``."""

    async def add(self, card: SlackCard, room: Room) -> None:
        """``calls.add``: on success the card is in ``call`` mode. A refused token is raised
        (nothing else will work either); any other failure leaves a Block Kit card."""
        client = self.web.client
        try:
            response = await self.web.call(
                "calls.add",
                client.calls_add(
                    external_unique_id=room.id,
                    join_url=card.url,
                    created_by=card.user,
                    title=card.title,
                    date_start=int(room.created_at),
                ),
            )
        except SlackFailure as failure:
            if failure.code in AUTH_ERRORS:
                raise
            if failure.code in NO_CALLS_ERRORS:
                self.available = False
                logger.info(
                    "Slack: the Calls API is not available (%s); cards are Block Kit messages",
                    failure.code,
                )
            else:
                logger.warning(
                    "Slack: calls.add failed (%s); this card is a Block Kit message", failure.code
                )
            return
        call = response.get("call")
        call_id = call.get("id") if isinstance(call, dict) else None
        if isinstance(call_id, str) and call_id:
            card.mode, card.call_id = "call", call_id

    async def participants(self, method: str, call_id: str, participant: Participant) -> None:
        """``calls.participants.add`` or ``.remove`` for one participant (a failure is logged)."""
        client = self.web.client
        users = [{"external_id": participant.id, "display_name": participant.name}]
        call = (
            client.calls_participants_add(id=call_id, users=users)
            if method == "calls.participants.add"
            else client.calls_participants_remove(id=call_id, users=users)
        )
        try:
            await self.web.call(method, call)
        except SlackFailure as failure:
            logger.warning("Slack: %s failed (%s)", method, failure.code)

    async def end(self, card: SlackCard, room: Room, duration: int) -> None:
        """``calls.end``, then the lobby's threaded message says the meeting has ended."""
        assert card.call_id is not None
        try:
            await self.web.call(
                "calls.end", self.web.client.calls_end(id=card.call_id, duration=duration)
            )
        except SlackFailure as failure:
            logger.warning("Slack: calls.end failed (%s)", failure.code)
        if card.lobby_ts is not None:
            await self.update_lobby_thread(card, room, ended=True)

    async def update_lobby_thread(self, card: SlackCard, room: Room, ended: bool = False) -> None:
        """Post (the first time someone waits) or update the threaded message under the card."""
        assert card.ts is not None
        client = self.web.client
        blocks: list[dict[str, Any]]
        if ended:
            ended_text = text(card.language, "chat.slack.ended")
            notification, blocks = ended_text, [context_plain(ended_text)]
        else:
            message = lobby_message(room, card.language)
            notification, blocks = message["text"], message["blocks"]
        if card.lobby_ts is None:
            if ended or not room.waiting:
                return
            try:
                response = await self.web.call(
                    "chat.postMessage",
                    client.chat_postMessage(
                        channel=card.channel, thread_ts=card.ts, text=notification, blocks=blocks
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: posting the lobby failed (%s)", failure.code)
                return
            card.lobby_ts = str(response.get("ts") or "") or None
        elif blocks != card.lobby_shown:
            try:
                await self.web.call(
                    "chat.update",
                    client.chat_update(
                        channel=card.channel, ts=card.lobby_ts, text=notification, blocks=blocks
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: updating the lobby failed (%s)", failure.code)
                return
        card.lobby_shown = blocks
