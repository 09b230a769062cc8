"""The Slack adapter: ``/meetnow`` through slack-bolt, with a call card kept up to date.

Transports, chosen by settings (both may be on):

- HTTP: ``POST /slack/events`` on meetnow's own aiohttp server, every request's signature checked
  by bolt (``MEETNOW_SLACK_SIGNING_SECRET``);
- Socket Mode (``MEETNOW_SLACK_APP_TOKEN``): meetnow opens a websocket to Slack, so no public URL
  is needed for Slack to reach it.

A command is acknowledged before any Web API call (bolt's ``process_before_response=False``: the
listener acks, bolt answers Slack, the listener carries on). The card is then posted with Slack's
Calls API (``calls.add`` and a ``call`` block) or, without the ``calls:write`` scope, as a Block Kit
message with a Join button; :class:`SlackCards` keeps it up to date from the room service's events.

Zoombombing defences: whoever types the command is the host, and the command's acknowledgement
(ephemeral: its author alone sees it) carries the host link; ``--lobby`` makes newcomers wait, and
their knocks appear in Slack with *Admit* / *Deny* buttons that only the host's clicks can use;
``--for 2h`` limits how long the link lets people in; room creation is rate-limited per user and
per workspace (:class:`~signaling.limits.ServerLimits`).

No room logic lives here: one :meth:`RoomService.create_room` per command, then the events. Logs
carry Slack error codes and exception types only: never tokens, names, topics, links or room ids.
The Slack libraries are kept at WARNING (:func:`quiet_slack_libraries`): bolt logs the whole body
of every request with a bad or stale signature at INFO, slack-sdk the ``response_url`` of a
retried post, and both whole requests at DEBUG. A correctly signed request is accepted once: a
replay inside Slack's 5-minute window is refused (:class:`~bot.core.SignedRequestGuard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from signaling.errors import RateLimited, TooManyRooms
from signaling.logging_setup import restrain
from signaling.rooms import Participant, Room, iso_utc

from .core import (
    ENDED_TEXT,
    NOT_HOST_TEXT,
    CallSummary,
    ChatCards,
    SignedRequestGuard,
    call_seconds,
    summarize,
)
from .options import parse_options
from .port import ChatPort, ChatRoomRequest
from .slack_settings import SLACK_LIBRARY_LOGGERS, SlackSettings

__all__ = [
    "SLACK",
    "SlackAdapter",
    "SlackCard",
    "SlackCards",
    "install_slack",
    "parse_command",
]

logger = logging.getLogger(__name__)

JOIN_ACTION = "meetnow_join"
"""``action_id`` of every Join button. A link button still sends Slack an interaction, which must
be acknowledged (or Slack shows a warning next to the button)."""
ADMIT_ACTION = "meetnow_admit"
DENY_ACTION = "meetnow_deny"
"""``action_id`` of the lobby's buttons; their ``value`` is ``<room id>:<participant id>``."""
MAX_KNOCKS_SHOWN = 10
"""People waiting shown with buttons (two blocks each; Slack allows 50 blocks a message)."""
MAX_INVITEES = 20
"""People one command invites by DM (Slack allows about one message per second per conversation;
a DM each is a different conversation, but a big list is better posted as a channel)."""
MAX_NAMES_ON_CARD = 20
"""Names listed on a Block Kit card; more show as "and N more"."""
RESPONSE_URL_POSTS = 5
"""Slack accepts this many posts to a command's ``response_url``..."""
RESPONSE_URL_SECONDS = 30 * 60
"""... within this long."""
API_TIMEOUT_SECONDS = 10.0
"""Longest wait for one Web API answer (retries after a 429 come on top)."""
STARTUP_SECONDS = 5.0
"""Longest the server's start waits for Slack (``auth.test``, ``apps.connections.open``)."""
TOKEN_RECHECK_SECONDS = 60.0
"""How often ``auth.test`` is retried when Slack could not be reached at start-up."""
REFUSAL_LOG_SECONDS = 60.0
"""At most one log line this often about requests with a bad signature (anyone can send them)."""
SHUTDOWN_SECONDS = 5.0
"""Time given to end the live cards when the server stops (its rooms end with it)."""

TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Web API error codes that say "try again later", not "this token is wrong"."""
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "org_login_required",
        "ekm_access_denied",
        "team_access_not_granted",
    }
)
"""Codes that mean the bot token itself is refused: nothing else will work either."""
NO_CALLS_ERRORS = frozenset({"missing_scope", "not_allowed_token_type"})
"""``calls.add`` codes after which the Calls API is not tried again (no ``calls:write``)."""
CANNOT_POST_HERE = frozenset({"not_in_channel", "channel_not_found"})
"""``chat.postMessage`` codes for a conversation the bot is not in (private channel, DM)."""

ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}\Z")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}\Z")
MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^<>]*)?>")
CHANNEL_REF = re.compile(r"<#[A-Z0-9]+(?:\|([^<>]*))?>")
SPECIAL_REF = re.compile(r"<!([a-z]+)[^<>|]*(?:\|([^<>]*))?>")
LINK_REF = re.compile(r"<([^<>|@#!][^<>|]*)(?:\|([^<>]*))?>")
HELP_WORDS = frozenset({"help", "-h", "--help", "?"})


# --------------------------------------------------------------------------------- the command


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


def describe_duration(seconds: int) -> str:
    """``1 h 30 min``, ``2 days``: how a lifetime is shown."""
    days, rest = divmod(seconds, 24 * 3600)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append("1 day" if days == 1 else f"{days} days")
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "0 min"


def slack_to_plain(text: str) -> str:
    """Slack's escaped message text as what the person typed: ``<#C1|general>`` is ``#general``,
    ``<!here>`` is ``@here``, ``<https://x|label>`` is ``label``, entities are undone. The result is
    untrusted plain text (it becomes the room's topic)."""
    text = CHANNEL_REF.sub(lambda m: f"#{m.group(1) or 'channel'}", text)
    text = SPECIAL_REF.sub(lambda m: m.group(2) or f"@{m.group(1)}", text)
    text = LINK_REF.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def mrkdwn_escape(text: str) -> str:
    """Untrusted text made inert in Slack's mrkdwn (no mentions, no links, no ``<!channel>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def usage(command: str) -> str:
    return (
        f"*{command}* starts a video call and posts its link here: whoever clicks *Join* is in "
        "the call, in the browser. You get a host link too, for your eyes only.\n"
        f"• `{command}`: start a call\n"
        f"• `{command} Weekly sync`: start a call with a topic\n"
        f"• `{command} @alice @bob Design review`: also invite Alice and Bob (they get the same "
        "link by direct message)\n"
        f"• `{command} --lobby Interview`: people wait in a lobby until you let them in, from the "
        "call or with *Admit* / *Deny* on the card\n"
        f"• `{command} --for 2h Office hours`: the link lets nobody new in after 2 hours "
        "(`90m`, `1h30m`, `45m`; at most 7 days)\n"
        f"• Options come first and combine: `{command} --lobby --for 45m @alice Interview`\n"
        f"• `{command} help`: this message (only you see it)"
    )


def host_message(link: str, lobby: bool, lifetime_seconds: int | None = None) -> str:
    """The command's ephemeral answer: the host link, for the command's author alone."""
    text = (
        f"Your host link — keep it to yourself: {link}\n"
        "Open it to join as the host: you can lock the room, remove people, mute them and end "
        "the meeting. Everyone else uses the link on the card."
    )
    if lifetime_seconds is not None:
        text += (
            f"\nThe card's link lets nobody new in after {describe_duration(lifetime_seconds)} "
            "(yours still works)."
        )
    if lobby:
        text += (
            "\nThe lobby is on: people wait until you let them in, from the call or with the "
            "*Admit* / *Deny* buttons meetnow shows here, on the card or in its thread (only "
            "your clicks count)."
        )
    return text


OFF_MESSAGE = (
    "meetnow can't use Slack right now: its bot token was refused. Ask whoever runs meetnow to "
    "check `MEETNOW_SLACK_BOT_TOKEN` (the server log says why)."
)


# ------------------------------------------------------------------------------------- the card


@dataclass
class SlackCard:
    """Where one room's card is, and how to update it. Forgotten when the room ends."""

    channel: str
    """The conversation the command came from (then the one the card is in)."""
    user: str
    """Slack user id of who started the call: the host, the only one whose clicks admit."""
    topic: str | None
    """The room's topic (plain, untrusted text)."""
    url: str
    """The room's link."""
    response_url: str | None = None
    """The command's ``response_url``: private replies, and the card where the bot can't post."""
    invitees: tuple[str, ...] = ()
    """Slack user ids invited by DM."""
    mode: Literal["call", "blocks"] = "blocks"
    """``call``: a Calls API call and a ``call`` block; ``blocks``: a Block Kit message."""
    call_id: str | None = None
    """The Calls API call (``R...``), in ``call`` mode."""
    ts: str | None = None
    """The card message's timestamp, when ``chat.postMessage`` posted it (so it can be updated)."""
    via_response_url: bool = False
    """Posted through ``response_url`` instead (the bot is not in that conversation)."""
    response_url_posts: int = 0
    """Posts made to ``response_url`` so far (Slack allows five in 30 minutes)."""
    started: float = field(default_factory=time.monotonic)
    """When the command came (monotonic), for ``response_url``'s 30 minutes."""
    shown: list[dict[str, Any]] | None = None
    """The blocks last sent, so an update that changes nothing is not sent."""
    ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set once the card has been posted (or could not be): updates wait for it."""
    team: str = ""
    """Slack team (workspace) id the command came from: a click must come from the same host."""
    lobby_ts: str | None = None
    """Calls mode: the threaded message under the card where the lobby's buttons are."""
    lobby_shown: list[dict[str, Any]] | None = None
    """The blocks last sent to that threaded message."""

    @property
    def title(self) -> str:
        return self.topic or "Meet now"


@dataclass(frozen=True)
class Reply:
    """Where to answer someone who clicked a button, privately."""

    url: str | None
    """The click's ``response_url``."""
    channel: str
    user: str


class SlackFailure(Exception):
    """A Web API call failed; ``code`` is Slack's error code or the exception's type name."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"{method}: {code}")
        self.method = method
        self.code = code


def error_code(error: SlackApiError) -> str:
    """Slack's error code, made safe to log (an unexpected body gives ``http_<status>``)."""
    response = error.response
    code = response.get("error") if isinstance(response.data, dict) else None
    if isinstance(code, str) and ERROR_CODE.fullmatch(code):
        return code
    return f"http_{response.status_code}"


def reason(code: str) -> str:
    """An error code in words, for the person who typed the command."""
    if code in AUTH_ERRORS:
        return f"meetnow's Slack token was refused ({code})"
    if code == "ratelimited":
        return "Slack is rate-limiting meetnow right now (ratelimited)"
    if not ERROR_CODE.fullmatch(code):  # an exception's type name: the network
        return "Slack could not be reached"
    return f"Slack answered {code}"


def retry_handlers() -> list[AsyncRetryHandler]:
    """One retry on a dropped connection; up to two after a 429, waiting its Retry-After."""
    return [AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]


class SlackCards(ChatCards[SlackCard]):
    """The ``/meetnow`` command and the cards of the rooms it created."""

    origin = "slack"

    def __init__(self, port: ChatPort, client: AsyncWebClient) -> None:
        super().__init__(port)
        self.client = client
        """Web API client with the bot token (also used outside requests, for card updates)."""
        self.calls_api = True
        """Whether to try the Calls API; False once Slack said the app lacks ``calls:write``."""
        self.refused: str | None = None
        """The error code that refused the bot token at start-up; commands then only explain."""
        self._posting = 0
        self._no_posting = asyncio.Event()
        self._no_posting.set()

    async def drained(self) -> None:
        """Wait until every command's card is posted and every card update has run."""
        await self._no_posting.wait()
        await super().drained()

    # Bolt listeners ---------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        """``/meetnow``: acknowledge first (no Web API call before it), then post the card.

        The acknowledgement is the host link, which Slack shows to the command's author alone
        (an ephemeral answer: no Web API call, no ``response_url`` post used up, and it works in
        conversations the bot is not in)."""
        parsed = parse_command(str(command.get("text") or ""))
        name = str(command.get("command") or "/meetnow")
        count = self.port.count_command
        if parsed.help:
            count("slack", "help")
            await ack(text=usage(name))
            return
        if parsed.error is not None:
            count("slack", "invalid")
            await ack(text=f"{parsed.error}\n\n{usage(name)}")
            return
        if self.refused is not None:
            count("slack", "off")
            await ack(text=OFF_MESSAGE)
            return
        user, channel = str(command.get("user_id") or ""), str(command.get("channel_id") or "")
        if not USER_ID.fullmatch(user) or not channel:
            count("slack", "invalid")
            await ack(text="This command came without a user or a conversation; try again.")
            return
        team = str(command.get("team_id") or command.get("enterprise_id") or "")
        try:
            room = self.port.create_room(
                ChatRoomRequest(
                    platform=self.origin,
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
            url=self.room_url(room),
            response_url=response_url if isinstance(response_url, str) else None,
            invitees=tuple(u for u in parsed.invitees if u != user)[:MAX_INVITEES],
        )
        self.track(room, card)
        self._posting += 1
        self._no_posting.clear()
        try:
            link = self.host_link(room)
            text = host_message(link, room.lobby, parsed.lifetime_seconds)
            await ack(text=text, response_type="ephemeral", unfurl_links=False, unfurl_media=False)
            await self.post(card, room)
        except Exception as error:
            # Not bolt's handler: its log line would carry the error's text (links, names).
            logger.error("Slack: posting a card failed (%s)", type(error).__name__)
        finally:
            card.ready.set()
            self._posting -= 1
            if self._posting == 0:
                self._no_posting.set()

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

        def refuse_clicker(card: SlackCard) -> str | None:
            if user_id == card.user and card.team in teams:
                return None
            logger.info("Slack: a click on Admit/Deny by someone other than the host: refused")
            return NOT_HOST_TEXT

        click = self.host_click(room_id, participant_id, admit, refuse_clicker)
        if click.card is None or click.room is None or click.text == NOT_HOST_TEXT:
            await self._reply(reply, click.text or ENDED_TEXT)
            return
        card, room = click.card, click.room
        ephemeral = bool(as_dict(body.get("container")).get("is_ephemeral"))
        if card.via_response_url and not ephemeral and reply.url is not None:
            # The card came through the command's response_url (five posts in 30 minutes); the
            # click brings a fresh one for the same message: the card's updates use it now.
            card.response_url, card.response_url_posts = reply.url, 0
            card.started = time.monotonic()
        if click.text is not None:
            await self._reply(reply, click.text)
        if ephemeral and reply.url is not None:
            # A message only the host sees (chat.update can't reach it): refresh it in place.
            message = {"replace_original": True, **lobby_message(room)}
            await self._post_response_url(reply.url, message)

    # Posting ----------------------------------------------------------------------------------

    async def post(self, card: SlackCard, room: Room) -> None:
        """Post the card (Calls API, else Block Kit; ``response_url`` where the bot can't post),
        then DM the invitees. Every failure ends in a private message with the link."""
        try:
            if self.calls_api:
                await self._add_call(card, room)
            await self._post_card(card, room)
        except SlackFailure as failure:
            logger.warning(
                "Slack: %s failed (%s); the link was sent privately", failure.method, failure.code
            )
            await self._tell_user(
                card,
                f"Couldn't post the meeting card: {reason(failure.code)}. "
                f"Here is your link: {card.url}",
            )
            if failure.code in AUTH_ERRORS:
                return
        if card.invitees:
            await self._invite(card)

    async def _add_call(self, card: SlackCard, room: Room) -> None:
        try:
            response = await self._api(
                "calls.add",
                self.client.calls_add(
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
                self.calls_api = False
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

    async def _post_card(self, card: SlackCard, room: Room) -> None:
        blocks, text = self.render(card, room)
        try:
            response = await self._api(
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
            if not await self._respond(
                card, {"response_type": "in_channel", "text": text, "blocks": blocks}
            ):
                raise SlackFailure("response_url", "response_url_failed") from None
        else:
            card.ts = str(response.get("ts") or "") or None
            card.channel = str(response.get("channel") or card.channel)
        card.shown = blocks

    async def _invite(self, card: SlackCard) -> None:
        topic = f": *{mrkdwn_escape(card.title)}*" if card.topic else ""
        line = f"<@{card.user}> invites you to a video call{topic}"
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": line}},
            join_button(card.url),
        ]
        failed: list[tuple[str, str]] = []
        for user_id in card.invitees:
            try:
                await self._api(
                    "chat.postMessage",
                    self.client.chat_postMessage(
                        channel=user_id,
                        text=f"{line}. Join: {card.url}",
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
            await self._tell_user(
                card, f"Couldn't send the link by DM to {who}. They can still join from the card."
            )

    # Updates from room events -----------------------------------------------------------------

    async def joined(self, card: SlackCard, room: Room, participant: Participant) -> None:
        await card.ready.wait()
        if card.mode == "call" and card.call_id is not None:
            await self._participants("calls.participants.add", card.call_id, participant)
        else:
            await self._update(card, room)

    async def left(self, card: SlackCard, room: Room, participant: Participant) -> None:
        await card.ready.wait()
        if card.mode == "call" and card.call_id is not None:
            await self._participants("calls.participants.remove", card.call_id, participant)
        else:
            await self._update(card, room)

    async def ended(self, card: SlackCard, room: Room, summary: CallSummary) -> None:
        await card.ready.wait()
        if card.mode == "call" and card.call_id is not None:
            try:
                await self._api(
                    "calls.end",
                    self.client.calls_end(
                        id=card.call_id, duration=call_seconds(room, self.port.now())
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: calls.end failed (%s)", failure.code)
            if card.lobby_ts is not None:
                await self._update_lobby_thread(card, room, ended=True)
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
            await self._update_lobby_thread(card, room)
        elif knock is not None and knock.id in room.waiting:
            await self._knock_privately(card, room)

    async def _update_lobby_thread(self, card: SlackCard, room: Room, ended: bool = False) -> None:
        assert card.ts is not None
        if ended:
            text, blocks = "The meeting has ended.", [context_plain("The meeting has ended.")]
        else:
            message = lobby_message(room)
            text, blocks = message["text"], message["blocks"]
        if card.lobby_ts is None:
            if ended or not room.waiting:
                return
            try:
                response = await self._api(
                    "chat.postMessage",
                    self.client.chat_postMessage(
                        channel=card.channel, thread_ts=card.ts, text=text, blocks=blocks
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: posting the lobby failed (%s)", failure.code)
                return
            card.lobby_ts = str(response.get("ts") or "") or None
        elif blocks != card.lobby_shown:
            try:
                await self._api(
                    "chat.update",
                    self.client.chat_update(
                        channel=card.channel, ts=card.lobby_ts, text=text, blocks=blocks
                    ),
                )
            except SlackFailure as failure:
                logger.warning("Slack: updating the lobby failed (%s)", failure.code)
                return
        card.lobby_shown = blocks

    async def _knock_privately(self, card: SlackCard, room: Room) -> None:
        """The bot is not in the conversation of a Calls API card: the buttons go to the host
        alone, through the command's ``response_url`` (keeping its last post for the end)."""
        left = RESPONSE_URL_POSTS - card.response_url_posts - 1
        if left <= 0 or time.monotonic() - card.started > RESPONSE_URL_SECONDS:
            return
        message = {"response_type": "ephemeral", "replace_original": False, **lobby_message(room)}
        await self._respond(card, message)

    async def end_all(self) -> None:
        """The server is stopping and its rooms end with it: end every live card."""
        now = self.port.now()
        for room in self.port.open_rooms():
            card = self.card(room.id)
            if card is not None and room.origin == self.origin:
                await self.ended(card, room, summarize(room, now))

    async def _participants(self, method: str, call_id: str, participant: Participant) -> None:
        users = [{"external_id": participant.id, "display_name": participant.name}]
        call = (
            self.client.calls_participants_add(id=call_id, users=users)
            if method == "calls.participants.add"
            else self.client.calls_participants_remove(id=call_id, users=users)
        )
        try:
            await self._api(method, call)
        except SlackFailure as failure:
            logger.warning("Slack: %s failed (%s)", method, failure.code)

    async def _update(
        self, card: SlackCard, room: Room, summary: CallSummary | None = None
    ) -> None:
        """Show the card's current state (who is in, or the summary) where the card is."""
        blocks, text = self.render(card, room, summary)
        if blocks == card.shown:
            return
        if card.ts is not None:
            try:
                await self._api(
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
            left = RESPONSE_URL_POSTS - card.response_url_posts - (0 if summary else 1)
            if left <= 0 or time.monotonic() - card.started > RESPONSE_URL_SECONDS:
                return
            message = {"response_type": "in_channel", "replace_original": True}
            if not await self._respond(card, {**message, "text": text, "blocks": blocks}):
                return
        else:
            return
        card.shown = blocks

    # Rendering --------------------------------------------------------------------------------

    def render(
        self, card: SlackCard, room: Room, summary: CallSummary | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """The card's blocks and its notification text. Untrusted text (topic, names) only goes
        out as ``plain_text`` or escaped."""
        title = mrkdwn_escape(card.title)
        if card.mode == "call" and card.call_id is not None:
            blocks: list[dict[str, Any]] = [{"type": "call", "call_id": card.call_id}]
            if summary is not None:
                blocks.append(context_plain(summary.text()))
                return blocks, f"{title}: {summary.text()}"
            notes = [invited_line(card.invitees)] if card.invitees else []
            if room.join_deadline is not None:
                notes.append(open_until(room.join_deadline))
            if notes:
                blocks.append(context_mrkdwn(" · ".join(notes)))
            return blocks, f"<@{card.user}> started a video call: {title}. Join: {card.url}"
        header = {"type": "header", "text": plain(card.title[:150])}
        if summary is not None:
            blocks = [header, {"type": "section", "text": plain(summary.text())}]
            return blocks, f"{title}: {summary.text()}"
        started = f"Started by <@{card.user}>"
        if card.invitees:
            started += f" · {invited_line(card.invitees)}"
        if room.join_deadline is not None:
            started += f" · {open_until(room.join_deadline)}"
        blocks = [
            header,
            {"type": "section", "text": {"type": "mrkdwn", "text": started}},
            context_plain(who_is_in(room)),
            join_button(card.url),
            *lobby_blocks(room),
        ]
        text = f"<@{card.user}> started a video call: {title}. Join: {card.url}"
        if card.invitees:
            text += f" ({invited_line(card.invitees)})"
        return blocks, text

    # Web API plumbing -------------------------------------------------------------------------

    async def _api(self, method: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
        try:
            return await call
        except SlackApiError as error:
            raise SlackFailure(method, error_code(error)) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SlackFailure(method, type(error).__name__) from None

    async def _respond(self, card: SlackCard, message: dict[str, Any]) -> bool:
        """Post to the command's ``response_url``; False (and a log line) if that failed."""
        if card.response_url is None:
            return False
        card.response_url_posts += 1
        return await self._post_response_url(card.response_url, message)

    async def _post_response_url(self, url: str, message: dict[str, Any]) -> bool:
        """Post to a ``response_url`` (a command's or a click's); False if that failed."""
        webhook = AsyncWebhookClient(
            url,
            session=self.client.session,
            timeout=int(API_TIMEOUT_SECONDS),
            retry_handlers=retry_handlers(),
        )
        try:
            response = await webhook.send_dict(message)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("Slack: posting to a response_url failed (%s)", type(error).__name__)
            return False
        if response.status_code != 200:
            body = response.body if ERROR_CODE.fullmatch(response.body or "") else "-"
            logger.warning(
                "Slack: a response_url refused the post (HTTP %d, %s)", response.status_code, body
            )
            return False
        return True

    async def _reply(self, reply: Reply, text: str) -> None:
        """A message only the person who clicked sees: the click's ``response_url``, else
        ``chat.postEphemeral``."""
        message = {"response_type": "ephemeral", "replace_original": False, "text": text}
        if reply.url is not None and await self._post_response_url(reply.url, message):
            return
        if not reply.channel or not USER_ID.fullmatch(reply.user):
            return
        try:
            await self._api(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(channel=reply.channel, user=reply.user, text=text),
            )
        except SlackFailure as failure:
            logger.warning("Slack: chat.postEphemeral failed (%s)", failure.code)

    async def _tell_user(self, card: SlackCard, text: str) -> None:
        """A message only the command's author sees: through ``response_url`` (works even with a
        refused token), else ``chat.postEphemeral``."""
        if await self._respond(card, {"response_type": "ephemeral", "text": text}):
            return
        try:
            await self._api(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(channel=card.channel, user=card.user, text=text),
            )
        except SlackFailure as failure:
            logger.warning("Slack: chat.postEphemeral failed (%s)", failure.code)


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def context_plain(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [plain(text)]}


def context_mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def invited_line(invitees: Sequence[str]) -> str:
    return "Invited: " + " ".join(f"<@{user_id}>" for user_id in invitees)


def join_button(url: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": JOIN_ACTION,
                "text": plain("Join"),
                "url": url,
                "style": "primary",
            }
        ],
    }


def who_is_in(room: Room) -> str:
    names = [p.name for p in room.participants.values()]
    if not names:
        return "Nobody has joined yet"
    shown = ", ".join(names[:MAX_NAMES_ON_CARD])
    more = len(names) - MAX_NAMES_ON_CARD
    return f"In the call ({len(names)}): {shown}" + (f" and {more} more" if more > 0 else "")


def lobby_message(room: Room) -> dict[str, Any]:
    """A message of its own for the lobby: who waits, with buttons, or that nobody does. Its
    notification text carries no name (names only go out as ``plain_text``)."""
    blocks = lobby_blocks(room)
    if not blocks:
        return {
            "text": "Nobody is waiting now.",
            "blocks": [context_plain("Nobody is waiting now.")],
        }
    return {"text": "Someone is waiting to join the call", "blocks": blocks}


def lobby_blocks(room: Room) -> list[dict[str, Any]]:
    """ "<name> is waiting" (plain text: names are untrusted) and *Admit* / *Deny* for each
    person in the lobby; empty when nobody waits."""
    blocks: list[dict[str, Any]] = []
    waiting = list(room.waiting.values())
    for participant in waiting[:MAX_KNOCKS_SHOWN]:
        value = f"{room.id}:{participant.id}"
        blocks.append(
            {
                "type": "section",
                "block_id": f"knock_{participant.id}",
                "text": plain(f"{participant.name} is waiting"),
            }
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"knock_{participant.id}_answer",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ADMIT_ACTION,
                        "text": plain("Admit"),
                        "value": value,
                        "style": "primary",
                    },
                    {
                        "type": "button",
                        "action_id": DENY_ACTION,
                        "text": plain("Deny"),
                        "value": value,
                        "style": "danger",
                    },
                ],
            }
        )
    more = len(waiting) - MAX_KNOCKS_SHOWN
    if more > 0:
        blocks.append(context_plain(f"and {more} more waiting: let them in from the call"))
    return blocks


def open_until(deadline: float) -> str:
    """mrkdwn: when the link stops letting people in, in each reader's own time zone."""
    stamp = int(deadline)
    return f"Link open until <!date^{stamp}^{{date_short_pretty}} at {{time}}|{iso_utc(stamp)}>"


# ------------------------------------------------------------------------------------ the wiring


class SlackAdapter:
    """The bolt app, its transports, and the cards, for one meetnow server."""

    def __init__(self, port: ChatPort, settings: SlackSettings) -> None:
        assert settings.slack_bot_token is not None
        self._token = settings.slack_bot_token.get_secret_value()
        secret = settings.slack_signing_secret
        self.signing_secret = secret.get_secret_value() if secret is not None else ""
        """Verifies every request to ``POST /slack/events`` (the route exists only with one)."""
        self.requests = SignedRequestGuard()
        """Signed requests already accepted (a replay is refused); its clock can be injected."""
        self._verifier = SignatureVerifier(self.signing_secret) if self.signing_secret else None
        app_token = settings.slack_app_token
        self.app_token = app_token.get_secret_value() if app_token is not None else ""
        """Socket Mode's app-level token (``xapp-...``), or empty: no Socket Mode."""
        self.client = AsyncWebClient(
            token=self._token,
            base_url=settings.slack_api_url,
            timeout=int(API_TIMEOUT_SECONDS),
            retry_handlers=retry_handlers(),
        )
        """The bot's Web API client (its aiohttp session is opened at start-up)."""
        self.cards = SlackCards(port, self.client)
        # Bolt's own client is only the template of its per-request clients, which get the token
        # from _authorize: giving bolt the token as well would make it log a warning, and its
        # single-workspace mode would call auth.test before acknowledging the first command.
        self._bolt_client = AsyncWebClient(
            base_url=settings.slack_api_url,
            timeout=int(API_TIMEOUT_SECONDS),
            retry_handlers=retry_handlers(),
        )

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            # (a plain function: bolt passes arguments by the names it finds, "self" included)
            return self._authorize(enterprise_id, team_id)

        self.bolt = AsyncApp(
            name="meetnow",
            logger=quiet_slack_libraries(),
            client=self._bolt_client,
            signing_secret=self.signing_secret,
            authorize=authorize,
            process_before_response=False,
            request_verification_enabled=True,
        )
        """The bolt app: request verification on, listeners for the command and the button."""
        self.bolt.command(re.compile(r"^/"))(self.cards.on_command)
        self.bolt.action(JOIN_ACTION)(self.cards.on_join_click)
        self.bolt.action(ADMIT_ACTION)(self.cards.on_knock_click)
        self.bolt.action(DENY_ACTION)(self.cards.on_knock_click)
        self.identity: AuthorizeResult | None = None
        """Who the bot is, from ``auth.test``."""
        self.socket_mode: AsyncSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_refusal_log = -REFUSAL_LOG_SECONDS

    def _authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # Never a Web API call here: this runs before the command is acknowledged.
        if self.identity is not None:
            return self.identity
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=self._token)

    async def handle_http(self, request: web.Request) -> web.Response:
        """``POST /slack/events``: slash commands and interactions, signatures checked by bolt;
        a correctly signed request seen before (a replay) is refused here, before bolt."""
        bolt_request = await to_bolt_request(request)
        if self._replayed(bolt_request.raw_body, request.headers):
            self._log_refusal("Slack: refused a replayed request (401)")
            return web.json_response({"error": "replayed request"}, status=401)
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        if bolt_response.status == 401:
            self._log_refusal(
                "Slack: refused a request without a valid signature (401); if commands fail, "
                "check MEETNOW_SLACK_SIGNING_SECRET and the server clock"
            )
        return await to_aiohttp_response(bolt_response)

    def _replayed(self, body: str, headers: Mapping[str, str]) -> bool:
        """Whether a correctly signed request came before (checked and remembered at once, with
        no await in between, so two copies sent together cannot both pass)."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if self._verifier is None or not timestamp.isdigit() or not signature:
            return False  # not signed: bolt refuses it
        if not self._verifier.is_valid(body, timestamp, signature):
            return False
        return not self.requests.first_time(timestamp, body)

    def _log_refusal(self, line: str) -> None:
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_SECONDS:  # anyone can send these
            self._last_refusal_log = now
            logger.warning(line)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Start-up and shutdown (``cleanup_ctx``)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS)
        )
        self.client.session = self._session
        self._bolt_client.session = self._session
        try:
            try:
                checked = await asyncio.wait_for(self.check_token(), STARTUP_SECONDS)
            except TimeoutError:
                logger.warning(
                    "Slack: auth.test got no answer within %d s; /meetnow stays on, checking "
                    "again in %d s",
                    STARTUP_SECONDS,
                    TOKEN_RECHECK_SECONDS,
                )
                checked = False
            if not checked:
                self._spawn(self._recheck_token())
            if self.app_token:
                await self.start_socket_mode()
            yield
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.socket_mode is not None:
                with contextlib.suppress(Exception):
                    await self.socket_mode.close_async()  # type: ignore[no-untyped-call]
            if self.cards.refused is None:
                try:
                    await asyncio.wait_for(self.cards.end_all(), SHUTDOWN_SECONDS)
                except Exception as error:
                    logger.warning("Slack: ending the cards failed (%s)", type(error).__name__)
            await self._session.close()

    async def check_token(self) -> bool:
        """``auth.test``: True once Slack has answered (accepting or refusing the token)."""
        try:
            response = await self.client.auth_test()
        except SlackApiError as error:
            code = error_code(error)
            if code in TRANSIENT_ERRORS or code.startswith("http_5"):
                logger.warning(
                    "Slack: auth.test did not succeed (%s); /meetnow stays on, checking again "
                    "in %d s",
                    code,
                    TOKEN_RECHECK_SECONDS,
                )
                return False
            self.cards.refused = code
            logger.error(
                "Slack: the bot token was refused (%s); /meetnow is off until it is fixed", code
            )
            return True
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning(
                "Slack: the Web API could not be reached (%s); /meetnow stays on, checking again "
                "in %d s",
                type(error).__name__,
                TOKEN_RECHECK_SECONDS,
            )
            return False
        self.identity = AuthorizeResult.from_auth_test_response(
            auth_test_response=response, bot_token=self._token
        )
        scopes = response.headers.get("x-oauth-scopes") if response.headers else None
        if isinstance(scopes, str) and "calls:write" not in scopes.replace(" ", "").split(","):
            self.cards.calls_api = False
        transports = [
            name
            for name, on in (("HTTP", self.signing_secret), ("Socket Mode", self.app_token))
            if on
        ]
        logger.info(
            "Slack: connected; cards use %s; commands arrive over %s",
            "the Calls API" if self.cards.calls_api else "Block Kit (no calls:write scope)",
            " and ".join(transports) or "nothing (set a signing secret or an app token)",
        )
        return True

    async def _recheck_token(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_RECHECK_SECONDS)
            if await self.check_token():
                return

    async def start_socket_mode(self) -> None:
        """Check the app-level token (one clear line if refused), then connect in the background:
        a Slack that can't be reached must not hold up the server's start."""
        url: str | None = None
        try:
            response = await asyncio.wait_for(
                self.client.apps_connections_open(app_token=self.app_token), STARTUP_SECONDS
            )
            url = str(response["url"])
        except SlackApiError as error:
            code = error_code(error)
            if code not in TRANSIENT_ERRORS and not code.startswith("http_5"):
                logger.error(
                    "Slack: the app-level token was refused (%s); Socket Mode is off until it "
                    "is fixed",
                    code,
                )
                return
            logger.warning("Slack: apps.connections.open failed (%s); retrying", code)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning(
                "Slack: apps.connections.open failed (%s); retrying", type(error).__name__
            )
        self.socket_mode = AsyncSocketModeHandler(self.bolt, self.app_token, web_client=self.client)
        if url is not None:
            self.socket_mode.client.wss_uri = url  # use the URL just issued, not a second one
        self._spawn(self.socket_mode.connect_async())  # type: ignore[no-untyped-call]

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


SLACK = web.AppKey("meetnow_slack", SlackAdapter)
"""Where the adapter is kept on the aiohttp app (tests reach the cards through it)."""


BOLT_LOGGER = "slack_bolt.meetnow"
"""The logger given to the bolt app. Bolt copies its level onto every logger it makes (request
verification, listeners, the ``meetnow`` app logger), so it must be at WARNING before the app is
built; a level set on ``slack_bolt`` alone would not reach them."""


def quiet_slack_libraries() -> logging.Logger:
    """Hold slack-bolt and slack-sdk at WARNING or above, even when the server logs at DEBUG
    (``meetnow serve -v``): at INFO bolt logs the body of every request with a bad or stale
    signature (topic, user, channel and team ids, the ``response_url``) and slack-sdk the
    ``response_url`` of a retried post; at DEBUG both log whole requests and answers (the host
    link in an acknowledgement, names, topics). Returns the logger to give bolt."""
    restrain([*SLACK_LIBRARY_LOGGERS, BOLT_LOGGER])
    return logging.getLogger(BOLT_LOGGER)


def install_slack(app: web.Application, port: ChatPort, settings: SlackSettings) -> None:
    """Mount ``POST /slack/events`` (with a signing secret) and start Slack with the server."""
    adapter = SlackAdapter(port, settings)
    app[SLACK] = adapter
    if adapter.signing_secret:
        app.router.add_post("/slack/events", adapter.handle_http)
    elif not adapter.app_token:
        logger.error(
            "Slack: neither MEETNOW_SLACK_SIGNING_SECRET nor MEETNOW_SLACK_APP_TOKEN is set; "
            "Slack can't deliver /meetnow to this server"
        )
    app.cleanup_ctx.append(adapter.lifetime)
