"""Discord's wire payloads that meetnow sends, as TypedDicts (in the style of discord.py's
``discord/types/``): the message an interaction answers with, its buttons, the command.

What Discord *sends* (a signed interaction) is untrusted JSON: it is read as
``Mapping[str, Any]`` and checked field by field where it is used, never cast to a type here.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from discord.types.embed import Embed as EmbedData

__all__ = [
    "ActionRow",
    "AllowedMentions",
    "ApplicationCommand",
    "ButtonComponent",
    "CommandOption",
    "EmbedData",
    "InteractionResponse",
    "MessageData",
]


class AllowedMentions(TypedDict):
    """Who a message may ping: nobody by ``parse``, at most the listed users."""

    parse: list[str]
    users: NotRequired[list[str]]


class ButtonComponent(TypedDict):
    """A button (component type 2): a link (style 5, ``url``) or a clickable one (``custom_id``)."""

    type: Literal[2]
    style: int
    label: str
    url: NotRequired[str]
    custom_id: NotRequired[str]


class ActionRow(TypedDict):
    """A row of buttons (component type 1); a message holds five."""

    type: Literal[1]
    components: list[ButtonComponent]


class MessageData(TypedDict, total=False):
    """A message as an interaction response, a follow-up or an edit carries it."""

    content: str
    embeds: list[EmbedData]
    components: list[ActionRow]
    allowed_mentions: AllowedMentions
    flags: int


class InteractionResponse(TypedDict):
    """The answer to a signed interaction on the HTTP endpoint (PONG carries no ``data``)."""

    type: int
    data: NotRequired[MessageData]


class CommandOption(TypedDict):
    """One option of a slash command (type 3: string, 5: boolean, 6: user)."""

    type: int
    name: str
    description: str
    description_localizations: NotRequired[dict[str, str]]
    """The description per Discord locale (``fr``, ...), from the catalogs."""
    required: bool


class ApplicationCommand(TypedDict):
    """A slash command as ``PUT /applications/{id}/commands`` takes it."""

    name: str
    type: int
    description: str
    description_localizations: NotRequired[dict[str, str]]
    """The description per Discord locale (``fr``, ...), from the catalogs."""
    options: list[CommandOption]
    contexts: list[int]
    integration_types: list[int]
