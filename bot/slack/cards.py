"""The cards of the rooms ``/meetnow`` created: posted (Calls API, else Block Kit; through the
command's ``response_url`` where the bot can't post), the invitees told by DM, then kept up to
date from the room service's events until the room ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Literal

from slack_sdk.web.async_client import AsyncWebClient

from signaling.rooms import Participant, Room

from ..core import CallSummary, ChatCards, call_seconds, summarize
from ..i18n import FALLBACK_LANGUAGE, available_languages, language_for, text
from ..port import ChatPort
from .blocks import join_button, mrkdwn_escape, render
from .calls_api import SlackCalls
from .card import SlackCard
from .lobby import knock_privately
from .web_api import AUTH_ERRORS, SlackFailure, SlackWebApi, reason

__all__ = ["CANNOT_POST_HERE", "SlackCards"]

logger = logging.getLogger("bot.slack")  # the adapter's one logger: its lines keep their name

CANNOT_POST_HERE = frozenset({"not_in_channel", "channel_not_found"})
"""``chat.postMessage`` codes for a conversation the bot is not in (private channel, DM)."""


class SlackCards(ChatCards[SlackCard]):
    """The cards of the rooms ``/meetnow`` created, kept up to date from the room events."""

    origin = "slack"

    def __init__(self, port: ChatPort, client: AsyncWebClient) -> None:
        super().__init__(port)
        self.client = client
        """Web API client with the bot token (also used outside requests, for card updates)."""
        self.web = SlackWebApi(client)
        self.calls = SlackCalls(self.web)
        """The Calls API, tried while Slack lets the app make calls (``calls:write``)."""
        self.refused: str | None = None
        """The error code that refused the bot token at start-up; commands then only explain."""
        self._posting = 0
        self._no_posting = asyncio.Event()
        self._no_posting.set()

    async def drained(self) -> None:
        """Wait until every command's card is posted and every card update has run."""
        await self._no_posting.wait()
        await super().drained()

    @contextlib.contextmanager
    def posting(self, card: SlackCard) -> Iterator[None]:
        """While a command posts its card: :meth:`drained` waits, and the card's updates wait
        until it is over (posted or not)."""
        self._posting += 1
        self._no_posting.clear()
        try:
            yield
        finally:
            card.ready.set()
            self._posting -= 1
            if self._posting == 0:
                self._no_posting.set()

    # Posting ----------------------------------------------------------------------------------

    async def author_language(self, user: str) -> str:
        """The command author's catalog: their Slack locale (``users.info`` with
        ``include_locale``, which needs the ``users:read`` scope). English if the app lacks the
        scope, the call fails or the locale has no catalog. Called after the acknowledgement:
        never on Slack's 3-second path (docs/slack.md)."""
        try:
            response = await self.web.call(
                "users.info", self.client.users_info(user=user, include_locale=True)
            )
        except SlackFailure as failure:
            logger.info("Slack: users.info failed (%s); the card is in English", failure.code)
            return FALLBACK_LANGUAGE
        found = response.get("user")
        locale = found.get("locale") if isinstance(found, dict) else None
        return language_for(locale if isinstance(locale, str) else None)

    async def post(self, card: SlackCard, room: Room) -> None:
        """Post the card (Calls API, else Block Kit; ``response_url`` where the bot can't post),
        then DM the invitees. Every failure ends in a private message with the link."""
        try:
            if self.calls.available:
                await self.calls.add(card, room)
            await self._post_card(card, room)
        except SlackFailure as failure:
            logger.warning(
                "Slack: %s failed (%s); the link was sent privately", failure.method, failure.code
            )
            await self.web.tell_user(
                card,
                text(
                    card.language,
                    "chat.slack.card_failed",
                    reason=reason(failure.code, card.language),
                    url=card.url,
                ),
            )
            if failure.code in AUTH_ERRORS:
                return
        self.remember(room, card)
        if card.invitees:
            await self._invite(card)

    def reference(self, card: SlackCard) -> dict[str, Any] | None:
        # Only a posted message (or a Calls API call) can be found again: a response_url lasts
        # 30 minutes and is a secret, so a card posted through it is not kept.
        if card.ts is None and card.call_id is None:
            return None
        return {
            "channel": card.channel,
            "user": card.user,
            "team": card.team,
            "mode": card.mode,
            "call_id": card.call_id,
            "ts": card.ts,
            "lobby_ts": card.lobby_ts,
            "language": card.language,
        }

    def from_reference(self, room: Room, reference: dict[str, Any]) -> SlackCard | None:
        mode: Literal["call", "blocks"] = "call" if reference["mode"] == "call" else "blocks"
        card = SlackCard(
            channel=str(reference["channel"]),
            user=str(reference["user"]),
            topic=room.topic,
            url=self.room_url(room),
            mode=mode,
            call_id=reference["call_id"],
            ts=reference["ts"],
            team=str(reference["team"]),
            lobby_ts=reference["lobby_ts"],
        )
        language = reference.get("language")  # absent in cards kept before languages
        if language in available_languages():
            card.language = language
        card.ready.set()
        return card

    async def _post_card(self, card: SlackCard, room: Room) -> None:
        blocks, text = render(card, room)
        try:
            response = await self.web.call(
                "chat.postMessage",
                self.client.chat_postMessage(
                    channel=card.channel,
                    text=text,
                    blocks=blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            )
        except SlackFailure as failure:
            if failure.code not in CANNOT_POST_HERE:
                raise
            logger.info(
                "Slack: the bot is not in that conversation (%s); the card goes through the "
                "command's response_url",
                failure.code,
            )
            card.via_response_url = True
            if not await self.web.respond(
                card, {"response_type": "in_channel", "text": text, "blocks": blocks}
            ):
                raise SlackFailure("response_url", "response_url_failed") from None
        else:
            card.ts = str(response.get("ts") or "") or None
            card.channel = str(response.get("channel") or card.channel)
        card.shown = blocks

    async def _invite(self, card: SlackCard) -> None:
        mention = f"<@{card.user}>"
        line = (
            text(
                card.language,
                "chat.slack.invitation_topic",
                mention=mention,
                topic=mrkdwn_escape(card.title),
            )
            if card.topic
            else text(card.language, "chat.slack.invitation", mention=mention)
        )
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": line}},
            join_button(card.url, card.language),
        ]
        failed: list[tuple[str, str]] = []
        for user_id in card.invitees:
            try:
                await self.web.call(
                    "chat.postMessage",
                    self.client.chat_postMessage(
                        channel=user_id,
                        text=text(
                            card.language, "chat.slack.invitation_join", line=line, url=card.url
                        ),
                        blocks=blocks,
                        unfurl_links=False,
                        unfurl_media=False,
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: an invitation by DM failed (%s)", failure.code)
                failed.append((user_id, failure.code))
        if failed:
            who = ", ".join(f"<@{user_id}> ({code})" for user_id, code in failed)
            await self.web.tell_user(card, text(card.language, "chat.slack.dm_failed", who=who))

    # Updates from room events -----------------------------------------------------------------

    async def joined(self, card: SlackCard, room: Room, participant: Participant) -> None:
        await card.ready.wait()
        if card.mode == "call" and card.call_id is not None:
            await self.calls.participants("calls.participants.add", card.call_id, participant)
        else:
            await self._update(card, room)

    async def left(self, card: SlackCard, room: Room, participant: Participant) -> None:
        await card.ready.wait()
        if card.mode == "call" and card.call_id is not None:
            await self.calls.participants("calls.participants.remove", card.call_id, participant)
        else:
            await self._update(card, room)

    async def ended(self, card: SlackCard, room: Room, summary: CallSummary) -> None:
        await card.ready.wait()
        if card.mode == "call" and card.call_id is not None:
            await self.calls.end(card, room, call_seconds(room, self.port.now()))
        await self._update(card, room, summary)

    async def knocked(self, card: SlackCard, room: Room, participant: Participant) -> None:
        await card.ready.wait()
        await self._show_lobby(card, room, knock=participant)

    async def knock_answered(
        self, card: SlackCard, room: Room, participant: Participant, admitted: bool
    ) -> None:
        await card.ready.wait()
        await self._show_lobby(card, room)

    async def _show_lobby(
        self, card: SlackCard, room: Room, knock: Participant | None = None
    ) -> None:
        """Show who waits, each with *Admit* / *Deny*: on a Block Kit card, on the card itself;
        under a Calls API card (whose ``call`` block is Slack's to draw), in a threaded reply
        kept up to date the same way; where the bot can't post, privately to the host."""
        if card.mode != "call" or card.call_id is None:
            await self._update(card, room)
        elif card.ts is not None:
            lobby_ts = card.lobby_ts
            await self.calls.update_lobby_thread(card, room)
            if card.lobby_ts != lobby_ts:
                self.remember(room, card)  # the thread is found again after a restart
        elif knock is not None and knock.id in room.waiting:
            await knock_privately(self.web, card, room)

    async def end_all(self) -> None:
        """The server is stopping and its rooms end with it: end every live card (unless the
        rooms outlive the restart: then the cards go on, updated after it)."""
        if self.port.rooms_outlive_restart():
            return
        now = self.port.now()
        for room in self.port.open_rooms():
            card = self.card(room.id)
            if card is not None and room.origin == self.origin:
                await self.ended(card, room, summarize(room, now))

    async def _update(
        self, card: SlackCard, room: Room, summary: CallSummary | None = None
    ) -> None:
        """Show the card's current state (who is in, or the summary) where the card is."""
        blocks, text = render(card, room, summary)
        if blocks == card.shown:
            return
        if card.ts is not None:
            try:
                await self.web.call(
                    "chat.update",
                    self.client.chat_update(
                        channel=card.channel, ts=card.ts, text=text, blocks=blocks
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: chat.update failed (%s)", failure.code)
                return
        elif card.via_response_url:
            # Slack takes five posts in 30 minutes per response_url: keep the last for the end.
            if not card.may_post_to_response_url(keep_last=summary is None):
                return
            message = {"response_type": "in_channel", "replace_original": True}
            if not await self.web.respond(card, {**message, "text": text, "blocks": blocks}):
                return
        else:
            return
        card.shown = blocks
