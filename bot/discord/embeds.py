"""The card's rendering: embeds, the Join link, the Admit / Deny rows, in Discord's API form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import discord

from bot.core import CallSummary
from bot.i18n import FALLBACK_LANGUAGE, text
from signaling.rooms import Room

from .types import ActionRow, ButtonComponent, MessageData

__all__ = [
    "EPHEMERAL",
    "KNOCK_PATTERN",
    "MAX_KNOCK_ROWS",
    "Edit",
    "Knock",
    "Reply",
    "ended_embed",
    "join_components",
    "live_edit",
    "live_embed",
]

EPHEMERAL: Final = 64
"""Message flag: only the user who ran the command sees it."""
MAX_KNOCK_ROWS: Final = 4
"""A message holds 5 action rows: the Join link takes one, each person waiting one more."""

LIVE_COLOUR: Final = 0x5865F2
ENDED_COLOUR: Final = 0x99AAB5
FIELD_LIMIT: Final = 1000
"""Embed field values hold 1024 characters; the name list stops a little before."""


def _plain(text: str) -> str:
    """Untrusted text shown as itself: no markdown, no mention, no masked link."""
    return discord.utils.escape_markdown(discord.utils.escape_mentions(text), ignore_links=False)


def _title(room: Room, language: str) -> str:
    if not room.topic:
        return text(language, "chat.discord.card_title")
    title = _plain(room.topic)
    if len(title) > 256:
        title = title[:255].rstrip("\\") + "…"
    return title


def _capped(lines: list[str], language: str) -> str:
    """Lines for an embed field, cut with "… and N more" before the field's limit."""
    shown: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        if used + len(line) + 1 > FIELD_LIMIT - 20:
            shown.append(text(language, "chat.discord.more", count=len(lines) - index))
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)


def _names(room: Room, language: str) -> str:
    names = [participant.name for participant in room.participants.values()]
    if not names:
        return text(
            language, "chat.discord.nobody_now" if room.ever_joined else "chat.discord.nobody_yet"
        )
    return _capped([f"• {_plain(name)}" for name in names], language)


def _waiting(room: Room, language: str) -> str:
    lines = [
        text(language, "chat.discord.is_waiting", name=_plain(p.name))
        for p in room.waiting.values()
    ]
    if len(lines) > MAX_KNOCK_ROWS:
        # Buttons fit for the first few; the next ones get theirs as those are answered.
        lines.insert(MAX_KNOCK_ROWS, text(language, "chat.discord.next_buttons"))
    return _capped(lines, language)


def live_embed(room: Room, starter_id: int, language: str = FALLBACK_LANGUAGE) -> discord.Embed:
    """The card while the call is open, in the card's ``language`` (docs/discord.md)."""
    lines = [text(language, "chat.discord.started_by", mention=f"<@{starter_id}>")]
    if room.lobby:
        lines.append(text(language, "chat.discord.lobby_on"))
    if room.join_deadline is not None:
        deadline = f"<t:{int(room.join_deadline)}:f>"
        lines.append(text(language, "chat.discord.open_until", time=deadline))
    embed = discord.Embed(
        title=_title(room, language), description="\n".join(lines), colour=LIVE_COLOUR
    )
    embed.add_field(
        name=text(language, "chat.discord.in_call"), value=_names(room, language), inline=False
    )
    if room.waiting:
        embed.add_field(
            name=text(language, "chat.discord.waiting_field"),
            value=_waiting(room, language),
            inline=False,
        )
    return embed


def ended_embed(
    room: Room, starter_id: int, summary: CallSummary, language: str = FALLBACK_LANGUAGE
) -> discord.Embed:
    """The card once the room has closed."""
    started = text(language, "chat.discord.started_by", mention=f"<@{starter_id}>")
    return discord.Embed(
        title=_title(room, language),
        description=f"{summary.text(language)}\n{started}",
        colour=ENDED_COLOUR,
    )


def join_components(url: str, language: str = FALLBACK_LANGUAGE) -> list[ActionRow]:
    """An action row with one link button (style 5: opens ``url``, sends no interaction)."""
    label = text(language, "chat.discord.join")
    return [{"type": 1, "components": [{"type": 2, "style": 5, "label": label, "url": url}]}]


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
    language: str = FALLBACK_LANGUAGE
    """The card's language (the buttons' words)."""

    def custom_id(self, action: str) -> str:
        custom_id = f"meetnow:{action}:{self.room_id}:{self.participant_id}"
        assert KNOCK_PATTERN.fullmatch(custom_id) and len(custom_id) <= 100
        return custom_id

    def label(self, action: str) -> str:
        key = "chat.discord.admit_name" if action == "admit" else "chat.discord.deny_name"
        label = text(self.language, key, name=self.name)
        return label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"

    def buttons(self) -> ActionRow:
        """The action row (raw API form)."""
        buttons: list[ButtonComponent] = [
            {
                "type": 2,
                "style": 3 if action == "admit" else 4,
                "label": self.label(action),
                "custom_id": self.custom_id(action),
            }
            for action in ("admit", "deny")
        ]
        return {"type": 1, "components": buttons}


# Messages -----------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One answer to ``/meetnow``, for either transport."""

    content: str | None = None
    embed: discord.Embed | None = None
    join_url: str | None = None
    mention: int | None = None
    """The one user this message may ping (the invited one)."""
    ephemeral: bool = False
    language: str = FALLBACK_LANGUAGE
    """The language of the Join button (the card's)."""

    def allowed_mentions(self) -> discord.AllowedMentions:
        users: list[discord.abc.Snowflake] = (
            [discord.Object(self.mention)] if self.mention is not None else []
        )
        return discord.AllowedMentions(everyone=False, users=users, roles=False, replied_user=False)

    def data(self) -> MessageData:
        """The message as Discord's API takes it (interaction response ``data``)."""
        data: MessageData = {
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
            data["components"] = join_components(self.join_url, self.language)
        if self.ephemeral:
            data["flags"] = EPHEMERAL
        return data


@dataclass
class Edit:
    """A new state of a card: its embed, its Join link (None removes every button) and the
    Admit / Deny buttons of the people waiting in the lobby. The gateway bot shows it through
    discord.py (:func:`bot.discord.gateway.edit_view`), the HTTP endpoint as :meth:`data`."""

    embed: discord.Embed
    join_url: str | None
    knocks: tuple[Knock, ...] = ()
    language: str = FALLBACK_LANGUAGE
    """The card's language (the Join button's word)."""

    def data(self) -> MessageData:
        components: list[ActionRow] = []
        if self.join_url:
            components = join_components(self.join_url, self.language)
            components += [knock.buttons() for knock in self.knocks]
        return {
            "embeds": [self.embed.to_dict()],
            "components": components,
            "allowed_mentions": {"parse": []},
        }


def live_edit(room: Room, starter_id: int, url: str, language: str = FALLBACK_LANGUAGE) -> Edit:
    """The card as the room is now: who is in, who waits (with Admit / Deny), the Join link."""
    waiting = list(room.waiting.values())[:MAX_KNOCK_ROWS]
    knocks = tuple(Knock(room.id, p.id, p.name, language) for p in waiting)
    return Edit(live_embed(room, starter_id, language), url, knocks, language)
