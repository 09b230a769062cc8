"""The Discord adapter: ``/meetnow`` posts a call card with a Join link, kept up to date.

Two transports reach one command handler (:meth:`DiscordAdapter.start_call`):

- **The gateway bot** (``MEETNOW_DISCORD_TOKEN``): a discord.py :class:`~discord.AutoShardedClient`
  with the ``guilds`` intent only (slash commands need no privileged intent). It discovers its
  gateway through ``GET /gateway/bot`` on ``MEETNOW_DISCORD_API_URL``, so pointing that setting at
  another place (a test fake) moves the whole bot. discord.py keeps its REST base in the class
  attribute :attr:`discord.http.Route.BASE`, which this module sets: it is **process-wide**, one
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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import discord
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from discord import app_commands

from signaling.errors import RateLimited, TooManyRooms
from signaling.rooms import Participant, Room

from .core import (
    NOT_HOST_TEXT,
    NOT_WAITING_TEXT,
    CallSummary,
    ChatCards,
    SignedRequestGuard,
    parse_duration,
)
from .discord_settings import DiscordSettings
from .options import parse_options
from .port import ChatPort, ChatRoomRequest

__all__ = [
    "COMMAND",
    "DISCORD",
    "INVITE_PERMISSIONS",
    "KNOCK_PATTERN",
    "CallRequest",
    "ClickAnswer",
    "DiscordAdapter",
    "DiscordCard",
    "DiscordCards",
    "KnockButton",
    "install_discord",
    "invite_url",
    "parse_duration",
]

logger = logging.getLogger(__name__)

VIEW_CHANNEL: Final = 1 << 10
SEND_MESSAGES: Final = 1 << 11
EMBED_LINKS: Final = 1 << 14
INVITE_PERMISSIONS: Final = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS
"""19456. meetnow only answers ``/meetnow`` and edits that answer; after 15 minutes it edits it
with the bot token, which needs the channel to be visible, and embeds need Embed Links."""

EPHEMERAL: Final = 64
"""Message flag: only the user who ran the command sees it."""
TOKEN_FRESH_SECONDS: Final = 14 * 60
"""Interaction tokens last 15 minutes; stop using one a minute early."""
MAX_RETRY_AFTER: Final = 30.0
"""Longest 429 ``retry_after`` our own HTTP calls wait for (once) before giving up on an edit."""
POSTED_TIMEOUT: Final = 15.0
"""How long a card update waits for the answer to the command to be sent."""
MESSAGE_ID_RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 4.0)
"""HTTP endpoint: when to ask Discord for the id of the message our answer created."""
MAX_INTERACTION_BYTES: Final = 64 * 1024
"""Largest interaction accepted on the HTTP endpoint (the app's own API limit is smaller)."""

HOST_LINK_RETRY_DELAYS: Final = (0.2, 0.5, 1.0, 2.0, 4.0)
"""HTTP endpoint: when to send the host link (a follow-up works once Discord has our answer)."""
SUPPRESS_EMBEDS: Final = 1 << 2
"""Message flag: no link preview (nothing fetches the host link, not even Discord's previewer)."""
MAX_KNOCK_ROWS: Final = 4
"""A message holds 5 action rows: the Join link takes one, each person waiting one more."""

_INTERACTION_PING: Final = 1
_INTERACTION_COMMAND: Final = 2
_INTERACTION_COMPONENT: Final = 3
_COMPONENT_BUTTON: Final = 2
_CALLBACK_PONG: Final = 1
_CALLBACK_MESSAGE: Final = 4
_CALLBACK_UPDATE_MESSAGE: Final = 7

COMMAND_NAME: Final = "meetnow"
COMMAND_DESCRIPTION: Final = "Start a video call here and post its Join link"
TOPIC_DESCRIPTION: Final = "What the call is about"
INVITE_DESCRIPTION: Final = "Someone to mention in the message"
LOBBY_DESCRIPTION: Final = "Newcomers wait until you let them in"
FOR_DESCRIPTION: Final = "How long the link lets people in, e.g. 2h, 90m or 1h30m (at most 7 days)"

COMMAND: Final[dict[str, Any]] = {
    "name": COMMAND_NAME,
    "type": 1,
    "description": COMMAND_DESCRIPTION,
    "options": [
        {"type": 3, "name": "topic", "description": TOPIC_DESCRIPTION, "required": False},
        {"type": 6, "name": "invite", "description": INVITE_DESCRIPTION, "required": False},
        {"type": 5, "name": "lobby", "description": LOBBY_DESCRIPTION, "required": False},
        {"type": 3, "name": "for", "description": FOR_DESCRIPTION, "required": False},
    ],
    "contexts": [0],
    "integration_types": [0],
}
"""``/meetnow`` as Discord's API describes it: what the gateway bot registers, and what
``PUT /applications/{id}/commands`` takes for an HTTP-endpoint-only setup (docs/discord.md)."""


def invite_url(application_id: int | str, permissions: int = INVITE_PERMISSIONS) -> str:
    """The link that adds the bot to a server (the ``bot`` scope includes slash commands)."""
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot&permissions={permissions}"
    )


DURATION_HELP: Final = (
    "`for` takes how long the link should let people in, like `2h`, `90m` or `1h30m` "
    "(at most 7 days, `7d`). No meeting was started."
)

TYPED_OPTIONS_HINT: Final = (
    "Use the command's own `lobby` and `for` options, or type `--lobby` and `--for <length>` "
    "at the start of the topic. No meeting was started."
)
"""Follows the shared parser's answer to an option typed wrong in the topic."""


@dataclass(frozen=True)
class CallRequest:
    """One ``/meetnow``, whichever transport brought it."""

    user_id: int
    """Who ran it: the host."""
    guild_id: int | None
    topic: str | None = None
    invite_id: int | None = None
    lobby: bool = False
    duration: str | None = None
    """The ``for`` option as typed."""


# Messages -----------------------------------------------------------------------------------------

LIVE_COLOUR: Final = 0x5865F2
ENDED_COLOUR: Final = 0x99AAB5
FIELD_LIMIT: Final = 1000
"""Embed field values hold 1024 characters; the name list stops a little before."""


def _plain(text: str) -> str:
    """Untrusted text shown as itself: no markdown, no mention, no masked link."""
    return discord.utils.escape_markdown(discord.utils.escape_mentions(text), ignore_links=False)


def _title(room: Room) -> str:
    if not room.topic:
        return "Meet now"
    title = _plain(room.topic)
    if len(title) > 256:
        title = title[:255].rstrip("\\") + "…"
    return title


def _capped(lines: list[str]) -> str:
    """Lines for an embed field, cut with "… and N more" before the field's limit."""
    shown: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        if used + len(line) + 1 > FIELD_LIMIT - 20:
            shown.append(f"… and {len(lines) - index} more")
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)


def _names(room: Room) -> str:
    names = [participant.name for participant in room.participants.values()]
    if not names:
        return "Nobody right now" if room.ever_joined else "Nobody yet"
    return _capped([f"• {_plain(name)}" for name in names])


def _waiting(room: Room) -> str:
    lines = [f"{_plain(p.name)} is waiting" for p in room.waiting.values()]
    if len(lines) > MAX_KNOCK_ROWS:
        # Buttons fit for the first few; the next ones get theirs as those are answered.
        lines.insert(MAX_KNOCK_ROWS, "(the next get buttons as these are answered)")
    return _capped(lines)


def live_embed(room: Room, starter_id: int) -> discord.Embed:
    """The card while the call is open."""
    lines = [f"Started by <@{starter_id}>"]
    if room.lobby:
        lines.append("Lobby on: the host lets people in.")
    if room.join_deadline is not None:
        lines.append(f"New people can join until <t:{int(room.join_deadline)}:f>.")
    embed = discord.Embed(title=_title(room), description="\n".join(lines), colour=LIVE_COLOUR)
    embed.add_field(name="In the call", value=_names(room), inline=False)
    if room.waiting:
        embed.add_field(name="Waiting in the lobby", value=_waiting(room), inline=False)
    return embed


def ended_embed(room: Room, starter_id: int, summary: CallSummary) -> discord.Embed:
    """The card once the room has closed."""
    return discord.Embed(
        title=_title(room),
        description=f"{summary.text()}\nStarted by <@{starter_id}>",
        colour=ENDED_COLOUR,
    )


def join_components(url: str) -> list[dict[str, Any]]:
    """An action row with one link button (style 5: opens ``url``, sends no interaction)."""
    return [{"type": 1, "components": [{"type": 2, "style": 5, "label": "Join", "url": url}]}]


def join_view(url: str, knocks: tuple[Knock, ...] = ()) -> discord.ui.View:
    """The same components for discord.py: the Join link, then a row of Admit / Deny per knock."""
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Join", url=url, style=discord.ButtonStyle.link, row=0))
    for row, knock in enumerate(knocks, start=1):
        view.add_item(KnockButton(knock.custom_id("admit"), knock.label("admit"), row=row))
        view.add_item(KnockButton(knock.custom_id("deny"), knock.label("deny"), row=row))
    return view


# Lobby buttons ------------------------------------------------------------------------------------

KNOCK_PATTERN: Final = re.compile(
    r"meetnow:(?P<action>admit|deny):(?P<room>[A-Za-z0-9_-]{22}):(?P<participant>[A-Za-z0-9_-]{1,40})"
)
"""``custom_id`` of an Admit / Deny button (at most 79 characters; Discord allows 100). It names
the room and the person; the click still counts only if it comes from the card's host."""
LABEL_LIMIT: Final = 80


@dataclass(frozen=True)
class Knock:
    """Someone waiting in a room's lobby, as the card's buttons name them."""

    room_id: str
    participant_id: str
    name: str
    """Untrusted text: only ever shown as a button label (plain text, no markdown, no pings)."""

    def custom_id(self, action: str) -> str:
        custom_id = f"meetnow:{action}:{self.room_id}:{self.participant_id}"
        assert KNOCK_PATTERN.fullmatch(custom_id) and len(custom_id) <= 100
        return custom_id

    def label(self, action: str) -> str:
        label = f"{'Admit' if action == 'admit' else 'Deny'} {self.name}"
        return label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"

    def buttons(self) -> dict[str, Any]:
        """The action row (raw API form)."""
        return {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 3 if action == "admit" else 4,
                    "label": self.label(action),
                    "custom_id": self.custom_id(action),
                }
                for action in ("admit", "deny")
            ],
        }


class KnockButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=KNOCK_PATTERN
):
    """Admit / Deny for the gateway bot: a *dynamic item*, so discord.py routes every click on a
    button whose ``custom_id`` matches :data:`KNOCK_PATTERN` here, whichever message it is on,
    without keeping a View (and so anything about a room) per message."""

    def __init__(self, custom_id: str, label: str = "", *, row: int | None = None) -> None:
        admit = custom_id.split(":", 2)[1] == "admit"
        super().__init__(
            discord.ui.Button(
                label=label or ("Admit" if admit else "Deny"),
                style=discord.ButtonStyle.success if admit else discord.ButtonStyle.danger,
                custom_id=custom_id,
            ),
            row=row,
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> KnockButton:
        return cls(match.group(0), getattr(item, "label", None) or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, MeetnowBot):
            await client.adapter.gateway_click(interaction, self.custom_id)


@dataclass
class Reply:
    """One answer to ``/meetnow``, for either transport."""

    content: str | None = None
    embed: discord.Embed | None = None
    join_url: str | None = None
    mention: int | None = None
    """The one user this message may ping (the invited one)."""
    ephemeral: bool = False

    def allowed_mentions(self) -> discord.AllowedMentions:
        users: list[discord.abc.Snowflake] = (
            [discord.Object(self.mention)] if self.mention is not None else []
        )
        return discord.AllowedMentions(everyone=False, users=users, roles=False, replied_user=False)

    def data(self) -> dict[str, Any]:
        """The message as Discord's API takes it (interaction response ``data``)."""
        data: dict[str, Any] = {
            "allowed_mentions": {
                "parse": [],
                "users": [str(self.mention)] if self.mention is not None else [],
            }
        }
        if self.content is not None:
            data["content"] = self.content
        if self.embed is not None:
            data["embeds"] = [self.embed.to_dict()]
        if self.join_url is not None:
            data["components"] = join_components(self.join_url)
        if self.ephemeral:
            data["flags"] = EPHEMERAL
        return data


@dataclass
class Edit:
    """A new state of a card: its embed, its Join link (None removes every button) and the
    Admit / Deny buttons of the people waiting in the lobby."""

    embed: discord.Embed
    join_url: str | None
    knocks: tuple[Knock, ...] = ()

    def data(self) -> dict[str, Any]:
        components: list[dict[str, Any]] = []
        if self.join_url:
            components = join_components(self.join_url)
            components += [knock.buttons() for knock in self.knocks]
        return {
            "embeds": [self.embed.to_dict()],
            "components": components,
            "allowed_mentions": {"parse": []},
        }

    def view(self) -> discord.ui.View | None:
        return join_view(self.join_url, self.knocks) if self.join_url else None


def live_edit(room: Room, starter_id: int, url: str) -> Edit:
    """The card as the room is now: who is in, who waits (with Admit / Deny), the Join link."""
    waiting = list(room.waiting.values())[:MAX_KNOCK_ROWS]
    knocks = tuple(Knock(room.id, p.id, p.name) for p in waiting)
    return Edit(live_embed(room, starter_id), url, knocks)


@dataclass
class ClickAnswer:
    """The answer to a click on Admit / Deny: an ephemeral ``text`` for the clicker alone, or
    ``edit``, the card's new state, shown at once by updating the message (callback type 7)."""

    text: str | None = None
    edit: Edit | None = None


# Errors -------------------------------------------------------------------------------------------


class DiscordApiError(Exception):
    """A refused Discord API call: HTTP status and Discord's JSON error code (0 if none)."""

    def __init__(self, status: int, code: int = 0) -> None:
        super().__init__(f"HTTP {status} (code {code})")
        self.status = status
        self.code = code

    @property
    def token_expired(self) -> bool:
        """The interaction token no longer works (401 code 50027, or 404 Unknown Webhook)."""
        return (self.status == 401 and self.code in (0, 50027)) or self.code == 10015

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def message_gone(self) -> bool:
        return self.code == 10008

    @classmethod
    def wrap(cls, error: discord.HTTPException) -> DiscordApiError:
        return cls(error.status, error.code)


def _describe(error: BaseException) -> str:
    """Status and code only: Discord's error texts are safe, but URLs and payloads are not."""
    if isinstance(error, DiscordApiError) and error.status == 0:
        cause = error.__cause__
        return f"no answer ({type(cause).__name__})" if cause is not None else "no answer"
    if isinstance(error, DiscordApiError | discord.HTTPException):
        return f"HTTP {error.status} (code {error.code})"
    return type(error).__name__


# Cards --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class DiscordCard:
    """Where one call's card is, and how to reach it."""

    starter_id: int
    application_id: int
    channel_id: int | None
    issued_at: float
    """Clock time the interaction arrived: its token works for 15 minutes from then."""
    token: str = field(repr=False)
    """The interaction token (a secret for 15 minutes)."""
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

    def live_edit(self, card: DiscordCard, room: Room) -> Edit:
        return live_edit(room, card.starter_id, self.room_url(room))

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
                card, Edit(ended_embed(room, card.starter_id, summary), None)
            )
        finally:
            card.interaction = None
            card.dead = True

    async def _refresh(self, card: DiscordCard, room: Room) -> None:
        card.pending = max(0, card.pending - 1)
        if card.pending:
            return  # a later update is queued; it shows this state too
        await self.adapter.deliver(card, self.live_edit(card, room))


# The gateway bot ----------------------------------------------------------------------------------


class MeetnowBot(discord.AutoShardedClient):
    """The gateway client: sharded (it asks ``GET /gateway/bot`` how), guilds intent only."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        # Voice is never used; keep discord.py from warning that its libraries are missing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self.adapter = adapter
        self.tree: app_commands.CommandTree[MeetnowBot] = app_commands.CommandTree(self)
        self.tree.add_command(
            app_commands.Command(
                name=COMMAND_NAME,
                description=COMMAND_DESCRIPTION,
                callback=_meetnow_command,
                allowed_contexts=app_commands.AppCommandContext(guild=True),
                allowed_installs=app_commands.AppInstallationType(guild=True),
            )
        )
        # Admit / Deny clicks, on any card, reach KnockButton.callback (see KnockButton).
        self.add_dynamic_items(KnockButton)
        self._announced = False

    async def setup_hook(self) -> None:
        await self.adapter.register_commands(self)

    async def on_connect(self) -> None:
        if not self._announced and self.application_id is not None:
            self._announced = True
            logger.info(
                "discord: connected to the gateway (%d shard(s)); /meetnow arrives over it",
                self.shard_count or 1,
            )
            self.adapter.announce(invite_url(self.application_id))


@app_commands.describe(
    topic=TOPIC_DESCRIPTION,
    invite=INVITE_DESCRIPTION,
    lobby=LOBBY_DESCRIPTION,
    for_=FOR_DESCRIPTION,
)
@app_commands.rename(for_="for")
async def _meetnow_command(
    interaction: discord.Interaction[MeetnowBot],
    topic: str | None = None,
    invite: discord.User | None = None,
    lobby: bool | None = None,
    for_: str | None = None,
) -> None:
    request = CallRequest(
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        topic=topic,
        invite_id=invite.id if invite is not None else None,
        lobby=bool(lobby),
        duration=for_,
    )
    await interaction.client.adapter.gateway_command(interaction, request)


class _NoDebugPayloads(logging.Filter):
    """discord.py logs whole payloads and URLs at DEBUG: interaction tokens, names, topics and
    room links. Those records are dropped; its INFO and above carry none of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_PAYLOAD_LOGGERS: Final = (
    "discord.http",
    "discord.webhook.async_",
    "discord.gateway",
    "discord.state",
    "discord.client",
    "discord.shard",
)


def _quiet_discord_debug() -> None:
    for name in _PAYLOAD_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoDebugPayloads) for f in log.filters):
            log.addFilter(_NoDebugPayloads())


# The adapter --------------------------------------------------------------------------------------


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
        self._public_key: Ed25519PublicKey | None = None
        self.requests = SignedRequestGuard()
        """Timestamp freshness and replays of signed HTTP interactions (wall clock, injectable:
        Discord's timestamps are real time, unlike the room service's clock)."""
        self._http: aiohttp.ClientSession | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._logged: set[str] = set()

    # The command handler, one for both transports ----------------------------------------------

    def start_call(self, request: CallRequest) -> tuple[Room | None, Reply]:
        """Create the room and the answer; no room (and an ephemeral answer only the author
        sees) for a bad ``for``, a rate limit, or a full server."""
        # `/meetnow topic:--lobby --for 2h Standup` works as in Slack (the shared parser, an
        # unknown `--word` refused the same way); the structured options win if both are given.
        typed = parse_options(request.topic or "")
        if typed.error is not None:
            self.port.count_command("discord", "invalid")
            return None, Reply(content=f"{typed.error} {TYPED_OPTIONS_HINT}", ephemeral=True)
        lobby = typed.lobby or request.lobby
        topic = typed.rest
        lifetime = typed.lifetime_seconds
        if request.duration is not None:
            lifetime = parse_duration(request.duration)
            if lifetime is None:
                self.port.count_command("discord", "invalid")
                return None, Reply(content=DURATION_HELP, ephemeral=True)
        org = str(request.guild_id) if request.guild_id is not None else "dm"
        try:
            room = self.port.create_room(
                ChatRoomRequest(
                    platform="discord",
                    organisation=org,
                    user=str(request.user_id),
                    topic=topic or None,
                    lobby=lobby,
                    lifetime_seconds=lifetime,
                )
            )
        except RateLimited as error:
            logger.warning("discord: /meetnow refused: rate limited")
            self.port.count_command("discord", "rate_limited")
            return None, Reply(content=str(error), ephemeral=True)
        except TooManyRooms as error:
            logger.warning("discord: /meetnow refused: too many open rooms")
            self.port.count_command("discord", "server_full")
            return None, Reply(content=str(error), ephemeral=True)
        self.port.count_command("discord", "created")
        reply = Reply(embed=live_embed(room, request.user_id), join_url=self.port.room_url(room))
        if request.invite_id is not None:
            reply.content = f"<@{request.invite_id}> you're invited to join this call."
            reply.mention = request.invite_id
        return room, reply

    def host_link_text(self, room: Room) -> str:
        """The ephemeral follow-up for the command's author alone: a fresh host link."""
        return (
            f"Your host link — keep it to yourself: {self.cards.host_link(room)}\n"
            "Open it to join as the host: you let people in from the lobby, and can lock the "
            "room, remove or mute people and end the meeting. Anyone holding it is a host too. "
            "The Admit / Deny buttons on the call message work for you alone."
        )

    # Admit / Deny, one handler for both transports -----------------------------------------------

    def click(self, user_id: int, message_id: int | None, custom_id: str) -> ClickAnswer:
        """A click on a card's button: only the card's host (who ran ``/meetnow``) can answer a
        knock. Everyone else gets an ephemeral refusal and nothing changes."""
        match = KNOCK_PATTERN.fullmatch(custom_id)
        if match is None:
            return ClickAnswer("meetnow does not know this button.")
        room_id, participant_id = match["room"], match["participant"]

        def refuse_clicker(card: DiscordCard) -> str | None:
            if message_id is not None and card.message_id not in (None, message_id):
                return "This button does not belong to this meeting's message."
            if user_id != card.starter_id:
                logger.info(
                    "discord: a click on Admit/Deny by someone other than the host: refused"
                )
                return NOT_HOST_TEXT
            return None

        admit = match["action"] == "admit"
        click = self.cards.host_click(room_id, participant_id, admit, refuse_clicker)
        if click.card is None or click.room is None:
            return ClickAnswer(click.text)
        card, room = click.card, click.room
        if click.text is not None and click.text != NOT_WAITING_TEXT:
            return ClickAnswer(click.text)
        # Answered now, or earlier (in the call, another click) or given up: show the card as is.
        return ClickAnswer(edit=self.cards.live_edit(card, room))

    async def gateway_click(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        """Answer a click over the gateway: update the message (type 7) or refuse (ephemeral)."""
        try:
            message = interaction.message
            answer = self.click(interaction.user.id, message.id if message else None, custom_id)
            if answer.edit is not None:
                await interaction.response.edit_message(
                    embed=answer.edit.embed,
                    view=answer.edit.view(),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            else:
                await interaction.response.send_message(answer.text or "", ephemeral=True)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            logger.warning("discord: could not answer a button click: %s", _describe(error))
        except Exception as error:
            # Never let it reach discord.py: its log line would print the button's custom_id.
            logger.error("discord: a button click failed: %s", type(error).__name__)

    def _open_card(
        self,
        room: Room,
        user_id: int,
        application_id: int,
        channel_id: int | None,
        token: str,
        interaction: discord.Interaction[Any] | None = None,
    ) -> DiscordCard:
        card = DiscordCard(
            starter_id=user_id,
            application_id=application_id,
            channel_id=channel_id,
            issued_at=self.clock(),
            token=token,
            interaction=interaction,
        )
        # Tracked before the answer goes out, so no join is missed; updates wait for ``posted``.
        self.cards.track(room, card)
        return card

    # Gateway transport ---------------------------------------------------------------------------

    async def gateway_command(
        self, interaction: discord.Interaction[MeetnowBot], request: CallRequest
    ) -> None:
        room, reply = self.start_call(request)
        card = None
        if room is not None:
            card = self._open_card(
                room,
                request.user_id,
                interaction.application_id,
                interaction.channel_id,
                interaction.token,
                interaction,
            )
        try:
            if reply.embed is None:
                await interaction.response.send_message(reply.content or "", ephemeral=True)
                return
            assert reply.join_url is not None
            callback = await interaction.response.send_message(
                reply.content,
                embed=reply.embed,
                view=join_view(reply.join_url),
                allowed_mentions=reply.allowed_mentions(),
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            logger.error("discord: could not answer /meetnow: %s", _describe(error))
            if card is not None:
                card.dead = True
                card.posted.set()
            return
        assert card is not None and room is not None
        card.message_id = callback.message_id
        card.posted.set()
        if card.message_id is None:
            with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, TimeoutError):
                card.message_id = (await interaction.original_response()).id
        try:
            await interaction.followup.send(
                self.host_link_text(room),
                ephemeral=True,
                suppress_embeds=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            self._log_card(card, "host_link", "could not send the host link", error)
        await self._warn_if_blind(card, interaction.app_permissions.value)

    async def register_commands(self, client: MeetnowBot) -> None:
        """Register ``/meetnow``: in each configured guild (shows at once), else globally."""
        guild_ids = self.settings.discord_guild_ids
        targets: list[discord.Object | None] = (
            [discord.Object(id=g) for g in guild_ids] if guild_ids else [None]
        )
        for guild in targets:
            try:
                if guild is not None:
                    client.tree.copy_global_to(guild=guild)
                await client.tree.sync(guild=guild)
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
                where = f"in guild {guild.id}" if guild is not None else "globally"
                logger.error(
                    "discord: could not register /meetnow %s: %s (was the bot invited with "
                    "the invite URL?)",
                    where,
                    _describe(error),
                )
            else:
                if guild is not None:
                    logger.info("discord: /meetnow registered in guild %s", guild.id)
                else:
                    logger.info("discord: /meetnow registered globally (may take a while to show)")

    def announce(self, url: str) -> None:
        """Print the invite URL once (``meetnow serve`` shows it)."""
        if self.invite_url is None:
            self.invite_url = url
            print(f"meetnow: invite the Discord bot with {url}", flush=True)

    async def _run_gateway(self, client: MeetnowBot, token: str) -> None:
        try:
            await client.start(token)
        except discord.LoginFailure:
            logger.error(
                "discord: the bot token was refused at login (401); the Discord bot is off, "
                "the rest of meetnow keeps running. Check MEETNOW_DISCORD_TOKEN."
            )
        except discord.PrivilegedIntentsRequired:
            logger.error("discord: the gateway refused our intents; the Discord bot is off")
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as error:
            logger.error(
                "discord: the Discord bot stopped (%s); the rest of meetnow keeps running",
                _describe(error),
            )
        finally:
            if not client.is_closed():
                with contextlib.suppress(Exception):
                    await client.close()

    def _bot_ready(self) -> bool:
        return (
            self.client is not None and self.client.user is not None and not self.client.is_closed()
        )

    # HTTP interactions endpoint ------------------------------------------------------------------

    def load_public_key(self, hex_key: str) -> bool:
        try:
            self._public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key.strip()))
        except ValueError:
            logger.error(
                "discord: MEETNOW_DISCORD_PUBLIC_KEY is not an Ed25519 public key in hex "
                "(64 characters); POST /discord/interactions is off"
            )
            return False
        return True

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether Discord signed ``timestamp + body`` (Ed25519, the application's public key)."""
        signature = headers.get("X-Signature-Ed25519")
        timestamp = headers.get("X-Signature-Timestamp")
        if self._public_key is None or not signature or not timestamp:
            return False
        try:
            self._public_key.verify(bytes.fromhex(signature), timestamp.encode() + body)
        except (ValueError, InvalidSignature):
            return False
        return True

    async def handle_http(self, request: web.Request) -> web.Response:
        """``POST /discord/interactions``."""
        body = await _read_limited(request, MAX_INTERACTION_BYTES)
        if body is None:
            return web.Response(status=413, text="request too large\n")
        if not self.verify(request.headers, body):
            return web.Response(status=401, text="invalid request signature\n")
        # Signed, but when? A captured request must not work again: not days later (stale
        # timestamp), nor within the window (seen already). No await until it is remembered.
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        if not self.requests.fresh(timestamp):
            return web.Response(status=401, text="stale request timestamp\n")
        if not self.requests.first_time(timestamp, body):
            return web.Response(status=401, text="replayed request\n")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return web.Response(status=400, text="invalid JSON\n")
        if not isinstance(payload, dict):
            return web.Response(status=400, text="invalid interaction\n")
        kind = payload.get("type")
        if kind == _INTERACTION_PING:
            return _json_response({"type": _CALLBACK_PONG})
        data = payload.get("data")
        if kind == _INTERACTION_COMPONENT and isinstance(data, dict):
            return self._http_click(payload, data)
        if kind != _INTERACTION_COMMAND or not isinstance(data, dict):
            return web.Response(status=400, text="unsupported interaction\n")
        if data.get("name") != COMMAND_NAME:
            reply = Reply(content="meetnow does not know this command.", ephemeral=True)
            return _json_response({"type": _CALLBACK_MESSAGE, "data": reply.data()})
        try:
            command = _parse_command(payload, self.settings.discord_application_id)
        except (KeyError, TypeError, ValueError):
            return web.Response(status=400, text="invalid interaction\n")
        configured = self.settings.discord_application_id
        if configured and configured.strip() != str(command.application_id):
            self._log_once(
                "application_id",
                "discord: MEETNOW_DISCORD_APPLICATION_ID differs from the application id Discord "
                "sends; using Discord's",
            )
        room, reply = self.start_call(command.request)
        if room is not None:
            card = self._open_card(
                room,
                command.request.user_id,
                command.application_id,
                command.channel_id,
                command.token,
            )
            # Discord posts the answer once it has our response; edits before it would miss.
            card.posted.set()
            self._spawn(self._after_http_answer(card, room, command.permissions))
        return _json_response({"type": _CALLBACK_MESSAGE, "data": reply.data()})

    def _http_click(self, payload: Mapping[str, Any], data: Mapping[str, Any]) -> web.Response:
        """A signed MESSAGE_COMPONENT interaction: a click on Admit / Deny."""
        custom_id = data.get("custom_id")
        try:
            user_id = int(_author(payload)["id"])
            message = payload.get("message")
            message_id = _snowflake(message, "id") if isinstance(message, dict) else None
        except (KeyError, TypeError, ValueError):
            return web.Response(status=400, text="invalid interaction\n")
        if not isinstance(custom_id, str) or data.get("component_type") != _COMPONENT_BUTTON:
            return web.Response(status=400, text="invalid interaction\n")
        answer = self.click(user_id, message_id, custom_id)
        if answer.edit is not None:
            return _json_response({"type": _CALLBACK_UPDATE_MESSAGE, "data": answer.edit.data()})
        reply = Reply(content=answer.text, ephemeral=True)
        return _json_response({"type": _CALLBACK_MESSAGE, "data": reply.data()})

    async def _after_http_answer(
        self, card: DiscordCard, room: Room, permissions: int | None
    ) -> None:
        await self._send_host_link_http(card, room)
        if self.settings.discord_token is None:
            return  # no bot path: the message id would never be used
        for delay in MESSAGE_ID_RETRY_DELAYS:
            await asyncio.sleep(delay)
            if card.message_id is not None or card.dead:
                break
            try:
                message = await self._rest(
                    "GET", f"/webhooks/{card.application_id}/{card.token}/messages/@original"
                )
            except DiscordApiError as error:
                if error.status != 404:
                    self._log_card(card, "message_id", "could not look up the call message", error)
                    break
            except (aiohttp.ClientError, TimeoutError):
                continue
            else:
                card.message_id = _snowflake(message, "id")
                break
        await self._warn_if_blind(card, permissions)

    async def _send_host_link_http(self, card: DiscordCard, room: Room) -> None:
        """The host link as an ephemeral follow-up. A follow-up only works once Discord has
        posted our answer (which it does after our response): until then it is a 404."""
        text = self.host_link_text(room)
        body = {
            "content": text,
            "flags": EPHEMERAL | SUPPRESS_EMBEDS,
            "allowed_mentions": {"parse": []},
        }
        error: BaseException | None = None
        for delay in HOST_LINK_RETRY_DELAYS:
            await asyncio.sleep(delay)
            if card.dead or self.cards.card(room.id) is not card:
                return
            try:
                await self._rest("POST", f"/webhooks/{card.application_id}/{card.token}", body)
                return
            except DiscordApiError as failed:
                error = failed
                if failed.status != 404:
                    break
            except (aiohttp.ClientError, TimeoutError) as failed:
                error = failed
        self._log_card(card, "host_link", "could not send the host link", error)

    # Raw REST (HTTP endpoint cards) ----------------------------------------------------------------

    async def _rest(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One Discord API call with the interaction token in the path (no bot token); a 429 is
        retried once after its ``retry_after``."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        url = self.api_url + path
        for attempt in range(2):
            async with self._http.request(
                method, url, json=body, timeout=aiohttp.ClientTimeout(total=15)
            ) as response:
                if 200 <= response.status < 300:
                    if response.status == 204:
                        return None
                    return await response.json(content_type=None)
                error_body: Any = None
                with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
                    error_body = await response.json(content_type=None)
                details = error_body if isinstance(error_body, dict) else {}
                if response.status == 429 and attempt == 0:
                    delay = _retry_after(response.headers, details)
                    if delay is not None and delay <= MAX_RETRY_AFTER:
                        logger.warning("discord: rate limited; retrying in %.2f s", delay)
                        await asyncio.sleep(delay)
                        continue
                code = details.get("code", 0)
                raise DiscordApiError(response.status, code if isinstance(code, int) else 0)
        raise DiscordApiError(429)

    # Card edits ----------------------------------------------------------------------------------

    async def deliver(self, card: DiscordCard, edit: Edit) -> None:
        """Show ``edit`` on ``card``: through the interaction while its token is fresh, then
        through the bot's channel message API. Failures are logged once per card and kind."""
        if not card.posted.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(card.posted.wait(), POSTED_TIMEOUT)
        if card.dead or not card.posted.is_set():
            return
        if card.via_interaction and self.clock() - card.issued_at < TOKEN_FRESH_SECONDS:
            try:
                await self._edit_original(card, edit)
                return
            except DiscordApiError as error:
                if not error.token_expired:
                    self._edit_failed(card, error)
                    return
        card.via_interaction = False
        if card.channel_id is None or card.message_id is None or not self._bot_ready():
            card.dead = True
            if self.settings.discord_token is None:
                self._log_once(
                    "no_bot_token",
                    "discord: a call message is no longer updated: its interaction token "
                    "expired (15 minutes) and no bot token is set (MEETNOW_DISCORD_TOKEN)",
                )
            else:
                self._log_card(card, "no_bot_path", "a call message is no longer updated", None)
            return
        try:
            await self._edit_in_channel(card, edit)
        except DiscordApiError as error:
            self._edit_failed(card, error)

    async def _edit_original(self, card: DiscordCard, edit: Edit) -> None:
        try:
            if card.interaction is not None:
                message = await card.interaction.edit_original_response(
                    embed=edit.embed,
                    view=edit.view(),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                if card.message_id is None:
                    card.message_id = message.id
                return
            data = await self._rest(
                "PATCH",
                f"/webhooks/{card.application_id}/{card.token}/messages/@original",
                edit.data(),
            )
            if card.message_id is None and isinstance(data, dict):
                card.message_id = _snowflake(data, "id")
        except discord.HTTPException as error:
            raise DiscordApiError.wrap(error) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DiscordApiError(0) from error

    async def _edit_in_channel(self, card: DiscordCard, edit: Edit) -> None:
        assert self.client is not None and card.channel_id is not None
        assert card.message_id is not None
        message = self.client.get_partial_messageable(card.channel_id).get_partial_message(
            card.message_id
        )
        try:
            await message.edit(
                embed=edit.embed, view=edit.view(), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as error:
            raise DiscordApiError.wrap(error) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DiscordApiError(0) from error

    def _edit_failed(self, card: DiscordCard, error: DiscordApiError) -> None:
        if error.message_gone:
            card.dead = True
            self._log_card(card, "gone", "a call message was deleted; no more updates", None)
        elif error.forbidden:
            self._log_card(
                card,
                "forbidden",
                "cannot update a call message: missing permissions in its channel "
                "(the bot needs View Channel and Embed Links there)",
                error,
            )
        elif error.status == 429:
            self._log_card(card, "rate_limited", "call message update rate limited", error)
        else:
            self._log_card(card, f"failed:{error.status}", "call message update failed", error)

    async def _warn_if_blind(self, card: DiscordCard, permissions: int | None) -> None:
        """After 15 minutes the bot edits with its own token: tell the user now (ephemeral) if
        it cannot see the channel, while the interaction can still answer."""
        if self.settings.discord_token is None or permissions is None:
            return
        needed = VIEW_CHANNEL | EMBED_LINKS
        if permissions & needed == needed:
            return
        logger.warning("discord: the bot lacks View Channel or Embed Links where /meetnow was used")
        text = (
            "Heads-up: meetnow's bot cannot see this channel (it needs View Channel and Embed "
            "Links), so this message stops updating after 15 minutes. The Join link keeps working."
        )
        try:
            if card.interaction is not None:
                await card.interaction.followup.send(text, ephemeral=True)
            else:
                await self._rest(
                    "POST",
                    f"/webhooks/{card.application_id}/{card.token}",
                    {"content": text, "flags": EPHEMERAL, "allowed_mentions": {"parse": []}},
                )
        except (discord.HTTPException, DiscordApiError, aiohttp.ClientError, TimeoutError) as error:
            self._log_card(card, "warn", "could not send the permissions warning", error)

    # Logging -------------------------------------------------------------------------------------

    def _log_card(
        self, card: DiscordCard, key: str, message: str, error: BaseException | None
    ) -> None:
        if key in card.logged:
            return
        card.logged.add(key)
        if error is None:
            logger.warning("discord: %s", message)
        else:
            logger.warning("discord: %s: %s", message, _describe(error))

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message)

    # Lifecycle -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """``app.cleanup_ctx``: start the gateway bot in the background, stop it at shutdown."""
        token = self.settings.discord_token
        previous_base = discord.http.Route.BASE
        if token is not None:
            # Process-wide: discord.py reads its REST base (and so its gateway) from this.
            discord.http.Route.BASE = self.api_url
            self.client = MeetnowBot(self)
            self._gateway = asyncio.ensure_future(
                self._run_gateway(self.client, token.get_secret_value())
            )
        if self._public_key is not None:
            logger.info("discord: interactions endpoint on at POST /discord/interactions")
        if token is None and self.settings.discord_application_id:
            self.announce(
                f"https://discord.com/oauth2/authorize?client_id="
                f"{self.settings.discord_application_id}&scope=applications.commands"
            )
        yield
        # The server closed every room before this: let the cards say "Ended" first.
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
        if self._http is not None:
            await self._http.close()
        discord.http.Route.BASE = previous_base


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_response(data: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), content_type="application/json")


def _snowflake(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return int(value) if value is not None else None


def _retry_after(headers: Mapping[str, str], body: Mapping[str, Any]) -> float | None:
    value = body.get("retry_after", headers.get("Retry-After"))
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _author(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Who sent an interaction: ``member.user`` in a guild, ``user`` elsewhere."""
    user: Mapping[str, Any] = payload["member"]["user"] if "member" in payload else payload["user"]
    return user


@dataclass(frozen=True)
class _HttpCommand:
    """The parts of a signed APPLICATION_COMMAND payload the handler uses."""

    request: CallRequest
    channel_id: int | None
    application_id: int
    token: str = field(repr=False)
    permissions: int | None
    """The app's permissions in the channel."""


def _parse_command(
    payload: Mapping[str, Any], configured_application_id: str | None
) -> _HttpCommand:
    data = payload["data"]
    options: dict[str, Any] = {}
    for option in data.get("options") or []:
        options[option.get("name")] = option.get("value")
    topic = options.get("topic")
    duration = options.get("for")
    invite = options.get("invite")
    guild_id = payload.get("guild_id")
    request = CallRequest(
        user_id=int(_author(payload)["id"]),
        guild_id=int(guild_id) if guild_id is not None else None,
        topic=topic if isinstance(topic, str) else None,
        invite_id=int(invite) if invite is not None else None,
        lobby=options.get("lobby") is True,
        duration=duration if isinstance(duration, str) else None,
    )
    channel_id = payload.get("channel_id") or (payload.get("channel") or {}).get("id")
    # The payload's own (signed) application id is the one its token belongs to.
    application_id = int(payload.get("application_id") or configured_application_id or "")
    token = payload["token"]
    if not isinstance(token, str) or not token:
        raise ValueError("no token")
    permissions = payload.get("app_permissions")
    return _HttpCommand(
        request=request,
        channel_id=int(channel_id) if channel_id is not None else None,
        application_id=application_id,
        token=token,
        permissions=int(permissions) if permissions is not None else None,
    )


DISCORD: Final = web.AppKey("discord", DiscordAdapter)
"""The adapter on the aiohttp app (tests reach its cards through it)."""


def install_discord(app: web.Application, port: ChatPort, settings: DiscordSettings) -> None:
    """Mount the Discord adapter: the gateway bot when ``MEETNOW_DISCORD_TOKEN`` is set, the
    HTTP interactions endpoint when ``MEETNOW_DISCORD_PUBLIC_KEY`` is."""
    _quiet_discord_debug()
    adapter = DiscordAdapter(port, settings)
    app[DISCORD] = adapter
    public_key = settings.discord_public_key
    if public_key is not None and adapter.load_public_key(public_key):
        app.router.add_post("/discord/interactions", adapter.handle_http)
    app.cleanup_ctx.append(adapter.lifecycle)
