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

No room logic lives here: one room per command through the chat port (:class:`bot.port.ChatPort`),
then the events. Logs (all on the ``bot.slack`` logger) carry Slack error codes and exception types
only: never tokens, names, topics, links or room ids. The Slack libraries are kept at WARNING
(:func:`quiet_slack_libraries`): bolt logs the whole body of every request with a bad or stale
signature at INFO, slack-sdk the ``response_url`` of a retried post, and both whole requests at
DEBUG. A correctly signed request is accepted once: a replay inside Slack's 5-minute window is
refused (:class:`~bot.core.SignedRequestGuard`).

The modules, by concern:

- :mod:`.app`: the bolt app, its two transports, start-up and shutdown, :func:`install_slack`;
- :mod:`.commands`: ``/meetnow``'s text parsed, its answers, and its listener;
- :mod:`.cards`: the cards posted and kept up to date from the room events;
- :mod:`.calls_api`: the card as a Calls API call, and the lobby's thread under it;
- :mod:`.blocks`: Block Kit rendering;
- :mod:`.lobby`: the buttons' clicks (*Admit* / *Deny* through the shared host-click flow);
- :mod:`.web_api`: the Web API client's calls, ``response_url`` posts, :class:`SlackFailure`;
- :mod:`.card`: one room's card (where it is, what it last showed).

Its settings (``MEETNOW_SLACK_*``) are in :mod:`bot.slack_settings`, which imports no Slack
library, so reading settings stays cheap.
"""

from __future__ import annotations

from .app import SLACK, SlackAdapter, install_slack, quiet_slack_libraries
from .card import SlackCard
from .cards import SlackCards
from .commands import ParsedCommand, parse_command
from .web_api import SlackFailure

__all__ = [
    "SLACK",
    "ParsedCommand",
    "SlackAdapter",
    "SlackCard",
    "SlackCards",
    "SlackFailure",
    "install_slack",
    "parse_command",
    "quiet_slack_libraries",
]
