"""Log levels for the libraries whose log lines can carry request data.

Anyone on the network can make aiohttp, slack-bolt or slack-sdk log: aiohttp's low-level server
logs the client's address and the raw bytes of a malformed request, its access log every path
(room ids); slack-bolt logs the whole body of a request with a bad or stale signature at INFO
(topic, user, channel and team ids, and a ``response_url`` that can post into the channel for 30
minutes), slack-sdk the ``response_url`` of a retried post. These loggers are held at WARNING or
above where the app is wired (:func:`signaling.server.create_app`, the Slack adapter), never
lower: a level someone set higher on purpose is kept. Nothing else of the process's logging is
touched (no root level, no ``logging.disable``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = [
    "MEDIA_LIBRARY_LOGGERS",
    "SERVER_LIBRARY_LOGGERS",
    "SLACK_LIBRARY_LOGGERS",
    "restrain",
]

SERVER_LIBRARY_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.websocket")
"""aiohttp's server side: access lines (client address, path), parse errors (address, raw
bytes), websocket protocol warnings (the client's offered subprotocols)."""
SLACK_LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk")
"""slack-bolt (request verification logs refused bodies at INFO) and slack-sdk (retried
``response_url`` posts at INFO; whole requests and answers at DEBUG)."""
MEDIA_LIBRARY_LOGGERS = ("aiortc", "aioice")
"""aiortc and aioice log peer addresses and SDP details at INFO and below."""


def restrain(names: Iterable[str], level: int = logging.WARNING) -> None:
    """Raise each named logger to at least ``level`` (a higher level already set stays)."""
    for name in names:
        library = logging.getLogger(name)
        if library.level < level:  # NOTSET (0) included: the root's level no longer applies
            library.setLevel(level)
