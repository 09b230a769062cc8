"""The one reader of ``/meetnow``'s typed options, for every chat platform.

``/meetnow [--lobby] [--for <length>] [@people...] [topic]``: options come first (mentions may
sit among them), the first word that is neither ends them, and the rest is the topic. A dash that
a chat client turned into an em or en dash (``\u2014lobby``) counts for a known option; a topic
may start with such a dash (``\u2014Budget review``) or with a bare ``--``.

One behaviour for every platform: an unknown ``--word`` before the topic is a mistake, answered
with the usage hint and no room (a typo such as ``--lobyy`` must not start an open meeting with a
strange topic). Platforms with structured options of their own (Discord) read the typed ones in
their topic text with this parser too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .core import parse_duration
from .i18n import FALLBACK_LANGUAGE, text

__all__ = ["DURATION_ERROR", "OPTION_ERROR", "ChatOptions", "parse_options"]

_OPTION = re.compile(r"(--|\u2014|\u2013)([A-Za-z][A-Za-z-]*)(?:=(\S*))?(?=\s|\Z)")
_KNOWN = frozenset({"lobby", "for"})
_WORD = re.compile(r"\s*(\S+)")

DURATION_ERROR = text(FALLBACK_LANGUAGE, "chat.options.duration_error")
"""The answer to a ``--for`` that is no length, too long or zero (English; ``parse_options``
answers in the language it is given)."""
OPTION_ERROR = text(FALLBACK_LANGUAGE, "chat.options.option_error")
"""The answer to an unknown ``--word`` (followed by the platform's usage)."""


@dataclass(frozen=True)
class ChatOptions:
    """What the options of one command ask for."""

    lobby: bool = False
    """``--lobby``: newcomers wait until a host lets them in."""
    lifetime_seconds: int | None = None
    """``--for 2h``: the link lets nobody new in after this long."""
    invitees: tuple[str, ...] = ()
    """User ids the platform's mentions name, in order, without repeats (anywhere in the text)."""
    rest: str = ""
    """The text after the options, as typed (the platform turns it into the topic)."""
    error: str | None = None
    """What was wrong (then nothing else is set: the command only explains)."""


def parse_options(
    typed: str, mention: re.Pattern[str] | None = None, language: str = FALLBACK_LANGUAGE
) -> ChatOptions:
    """Read the leading options of ``typed``. ``mention``: the platform's mention syntax, its
    first group the user id (mentions are skipped among the options and collected anywhere);
    ``language``: the catalog of the error, if any."""
    stripped = typed.strip()
    lobby = False
    lifetime: int | None = None
    rest = stripped
    while True:
        rest = rest.lstrip()
        found = mention.match(rest) if mention is not None else None
        if found is not None:
            rest = rest[found.end() :]
            continue
        option = _OPTION.match(rest)
        if option is None:
            break
        dash, name, value = option.group(1), option.group(2).lower(), option.group(3)
        if dash != "--" and name not in _KNOWN:
            break  # a topic that starts with a dash, like an em dash and "Budget review"
        rest = rest[option.end() :]
        if name == "lobby" and value is None:
            lobby = True
        elif name == "for":
            if value is None:
                word = _WORD.match(rest)
                value = word.group(1) if word is not None else ""
                rest = rest[word.end() :] if word is not None else rest
            lifetime = parse_duration(value)
            if lifetime is None:
                return ChatOptions(error=text(language, "chat.options.duration_error"))
        else:
            return ChatOptions(error=text(language, "chat.options.option_error"))
    invitees: list[str] = []
    if mention is not None:
        for user_id in mention.findall(stripped):
            if user_id not in invitees:
                invitees.append(user_id)
    return ChatOptions(
        lobby=lobby, lifetime_seconds=lifetime, invitees=tuple(invitees), rest=rest.strip()
    )
