"""Log levels for the libraries whose log lines can carry request data.

Anyone on the network can make aiohttp, slack-bolt or slack-sdk log: aiohttp's low-level server
logs the client's address and the raw bytes of a malformed request, its access log every path
(room ids); slack-bolt logs the whole body of a request with a bad or stale signature at INFO
(topic, user, channel and team ids, and a ``response_url`` that can post into the channel for 30
minutes), slack-sdk the ``response_url`` of a retried post. These loggers are held at WARNING or
above where the app is wired (:func:`signaling.server.create_app`, the Slack adapter, which keeps
its own list in ``bot/slack_settings.py``), never
lower: a level someone set higher on purpose is kept. Nothing else of the process's logging is
touched (no root level, no ``logging.disable``).

``meetnow serve`` and the relay workers write their log as text, or with ``MEETNOW_LOG_FORMAT=json``
one JSON object per line for log shippers (:func:`configure_logging`). The JSON lines carry exactly
what the text lines carry (time, level, logger, message, a traceback), never a record's arguments
or extra attributes, so the redaction above holds for both.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "LOG_FORMATS",
    "MEDIA_LIBRARY_LOGGERS",
    "SERVER_LIBRARY_LOGGERS",
    "JsonLineFormatter",
    "configure_logging",
    "restrain",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

SERVER_LIBRARY_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.websocket")
"""aiohttp's server side: access lines (client address, path), parse errors (address, raw
bytes), websocket protocol warnings (the client's offered subprotocols)."""
MEDIA_LIBRARY_LOGGERS = ("aiortc", "aioice")
"""aiortc and aioice log peer addresses and SDP details at INFO and below."""


def restrain(names: Iterable[str], level: int = logging.WARNING) -> None:
    """Raise each named logger to at least ``level`` (a higher level already set stays)."""
    for name in names:
        library = logging.getLogger(name)
        if library.level < level:  # NOTSET (0) included: the root's level no longer applies
            library.setLevel(level)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``
    and, for a record with an exception, ``exception`` (the traceback the text format prints).
    Nothing else of the record: its arguments and extra attributes (an access logger's client
    address, say) never reach the line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(
    log_format: str, *, level: int = logging.INFO, text_format: str = TEXT_FORMAT
) -> None:
    """The process's log: ``text`` lines or ``json`` lines on stderr (``MEETNOW_LOG_FORMAT``)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter(text_format))
    logging.basicConfig(level=level, handlers=[handler])
