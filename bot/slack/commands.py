"""``/meetnow``: its text parsed, its answers' texts, and the bolt listener that creates the room.

A command is acknowledged before any Web API call (bolt's ``process_before_response=False``: the
listener acks, bolt answers Slack, the listener carries on); the acknowledgement (ephemeral: its
author alone sees it) carries the host link, then the card is posted."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck

from signaling.errors import RateLimited, TooManyRooms

from ..i18n import FALLBACK_LANGUAGE, text
from ..options import parse_options
from ..port import ChatRoomRequest
from .card import SlackCard
from .cards import SlackCards
from .web_api import USER_ID

__all__ = ["ParsedCommand", "SlashCommand", "parse_command"]

logger = logging.getLogger("bot.slack")  # the adapter's one logger: its lines keep their name

MAX_INVITEES = 20
"""People one command invites by DM (Slack allows about one message per second per conversation;
a DM each is a different conversation, but a big list is better posted as a channel)."""

MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^<>]*)?>")
CHANNEL_REF = re.compile(r"<#[A-Z0-9]+(?:\|([^<>]*))?>")
SPECIAL_REF = re.compile(r"<!([a-z]+)[^<>|]*(?:\|([^<>]*))?>")
LINK_REF = re.compile(r"<([^<>|@#!][^<>|]*)(?:\|([^<>]*))?>")
HELP_WORDS = frozenset({"help", "-h", "--help", "?"})


@dataclass(frozen=True)
class ParsedCommand:
    """What ``/meetnow <text>`` asks for."""

    help: bool = False
    """``/meetnow help``: usage only, no room."""
    invitees: tuple[str, ...] = ()
    """Slack user ids mentioned, in order, without repeats."""
    topic: str | None = None
    """The rest of the text, as plain text (Slack's escaping undone), or None."""
    lobby: bool = False
    """``--lobby``: newcomers wait until the host lets them in."""
    lifetime_seconds: int | None = None
    """``--for 2h``: the link lets nobody new in after this long."""
    error: str | None = None
    """What was wrong with the options (the command then only explains, no room)."""


def parse_command(text: str) -> ParsedCommand:
    """Parse the text of a slash command sent with ``should_escape: true``: mentions arrive as
    ``<@U123|name>`` (or ``<@U123>``), ``&``, ``<`` and ``>`` as HTML entities.

    The options are read by the shared parser (:func:`bot.options.parse_options`): ``--lobby``
    and ``--for <length>`` first, mentions among them; the first other word starts the topic."""
    stripped = text.strip()
    if stripped.lower() in HELP_WORDS:
        return ParsedCommand(help=True)
    options = parse_options(stripped, MENTION)
    if options.error is not None:
        return ParsedCommand(error=options.error)
    topic = slack_to_plain(MENTION.sub(" ", options.rest))
    return ParsedCommand(
        invitees=options.invitees,
        topic=topic or None,
        lobby=options.lobby,
        lifetime_seconds=options.lifetime_seconds,
    )


def describe_duration(seconds: int, language: str = FALLBACK_LANGUAGE) -> str:
    """``1 h 30 min``, ``2 days``: how a lifetime is shown."""
    days, rest = divmod(seconds, 24 * 3600)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(
            text(language, "chat.slack.one_day" if days == 1 else "chat.slack.days", n=days)
        )
    if hours:
        parts.append(text(language, "chat.slack.hours", n=hours))
    if minutes:
        parts.append(text(language, "chat.slack.minutes", n=minutes))
    return " ".join(parts) or text(language, "chat.slack.minutes", n=0)


def slack_to_plain(text: str) -> str:
    """Slack's escaped message text as what the person typed: ``<#C1|general>`` is ``#general``,
    ``<!here>`` is ``@here``, ``<https://x|label>`` is ``label``, entities are undone. The result is
    untrusted plain text (it becomes the room's topic)."""
    text = CHANNEL_REF.sub(lambda m: f"#{m.group(1) or 'channel'}", text)
    text = SPECIAL_REF.sub(lambda m: m.group(2) or f"@{m.group(1)}", text)
    text = LINK_REF.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


# The acknowledgement's words (usage, errors, the host link) are English: Slack's command
# payload carries no locale, and asking users.info first would spend the 3 seconds Slack allows
# (docs/slack.md). They come from the catalogs all the same, ready for the day it does.


def usage(command: str, language: str = FALLBACK_LANGUAGE) -> str:
    return text(language, "chat.slack.usage", command=command)


def host_message(
    link: str, lobby: bool, lifetime_seconds: int | None = None, language: str = FALLBACK_LANGUAGE
) -> str:
    """The command's ephemeral answer: the host link, for the command's author alone."""
    message = text(language, "chat.slack.host_link", link=link)
    if lifetime_seconds is not None:
        length = describe_duration(lifetime_seconds, language)
        message += "\n" + text(language, "chat.slack.host_lifetime", length=length)
    if lobby:
        message += "\n" + text(language, "chat.slack.host_lobby")
    return message


OFF_MESSAGE = text(FALLBACK_LANGUAGE, "chat.slack.off")


class SlashCommand:
    """The bolt listener of ``/meetnow`` (whatever the command is named in the Slack app)."""

    def __init__(self, cards: SlackCards) -> None:
        self.cards = cards

    async def on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        """``/meetnow``: acknowledge first (no Web API call before it), then post the card.

        The acknowledgement is the host link, which Slack shows to the command's author alone
        (an ephemeral answer: no Web API call, no ``response_url`` post used up, and it works in
        conversations the bot is not in)."""
        cards = self.cards
        parsed = parse_command(str(command.get("text") or ""))
        name = str(command.get("command") or "/meetnow")
        count = cards.port.count_command
        if parsed.help:
            count("slack", "help")
            await ack(text=usage(name))
            return
        if parsed.error is not None:
            count("slack", "invalid")
            await ack(text=f"{parsed.error}\n\n{usage(name)}")
            return
        if cards.refused is not None:
            count("slack", "off")
            await ack(text=OFF_MESSAGE)
            return
        user, channel = str(command.get("user_id") or ""), str(command.get("channel_id") or "")
        if not USER_ID.fullmatch(user) or not channel:
            count("slack", "invalid")
            await ack(text=text(FALLBACK_LANGUAGE, "chat.slack.no_user"))
            return
        team = str(command.get("team_id") or command.get("enterprise_id") or "")
        try:
            room = cards.port.create_room(
                ChatRoomRequest(
                    platform=cards.origin,
                    organisation=team,
                    user=user,
                    topic=parsed.topic,
                    lobby=parsed.lobby,
                    lifetime_seconds=parsed.lifetime_seconds,
                )
            )
        except (RateLimited, TooManyRooms) as error:
            count("slack", "rate_limited" if isinstance(error, RateLimited) else "server_full")
            await ack(text=str(error))
            return
        count("slack", "created")
        response_url = command.get("response_url")
        card = SlackCard(
            channel=channel,
            user=user,
            team=team,
            topic=room.topic,
            url=cards.room_url(room),
            response_url=response_url if isinstance(response_url, str) else None,
            invitees=tuple(u for u in parsed.invitees if u != user)[:MAX_INVITEES],
        )
        cards.track(room, card)
        with cards.posting(card):
            try:
                link = cards.host_link(room)
                message = host_message(link, room.lobby, parsed.lifetime_seconds)
                await ack(
                    text=message, response_type="ephemeral", unfurl_links=False, unfurl_media=False
                )
                # After the acknowledgement: the card in its author's language (docs/slack.md).
                card.language = await cards.author_language(user)
                await cards.post(card, room)
            except Exception as error:
                # Not bolt's handler: its log line would carry the error's text (links, names).
                logger.error("Slack: posting a card failed (%s)", type(error).__name__)
