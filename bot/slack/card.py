"""One room's card in Slack: where it is, how it was posted, and what was last shown."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..i18n import FALLBACK_LANGUAGE, text

__all__ = ["RESPONSE_URL_POSTS", "RESPONSE_URL_SECONDS", "SlackCard"]

RESPONSE_URL_POSTS = 5
"""Slack accepts this many posts to a command's ``response_url``..."""
RESPONSE_URL_SECONDS = 30 * 60
"""... within this long."""


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
    language: str = FALLBACK_LANGUAGE
    """The catalog of the card and of what meetnow tells around it: the author's Slack locale
    (``users.info``, looked up after the acknowledgement: docs/slack.md), else English."""

    @property
    def title(self) -> str:
        return self.topic or text(self.language, "chat.slack.card_title")

    def may_post_to_response_url(self, keep_last: bool) -> bool:
        """Whether ``response_url`` still takes a post (five in 30 minutes); ``keep_last`` keeps
        the last one for the card's end."""
        left = RESPONSE_URL_POSTS - self.response_url_posts - (1 if keep_last else 0)
        return left > 0 and time.monotonic() - self.started <= RESPONSE_URL_SECONDS
