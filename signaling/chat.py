"""In-call chat: check a message, relay it to everyone in the call, forget it.

Nothing here keeps or logs a message, its length or its sender: it goes out to the websockets of
the people in the call now (the sender's echo is its confirmation) and is gone. Lobby guests never
get here (the connection refuses their in-call messages) and broadcasts skip them.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING

from .limits import Bucket, TokenBucket
from .protocol import ErrorCode, ProtocolError
from .protocol_chat import MAX_CHAT_CHARACTERS, ChatBroadcastMessage, ChatMessage
from .rooms import Room

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["CHAT_BURST", "chat_bucket", "relay_chat"]

CHAT_BURST = 10
"""Chat messages one participant may send back to back before the sustained rate applies."""
TOO_LONG = f"Messages can be at most {MAX_CHAT_CHARACTERS:,} characters."
EMPTY = "A message needs some text."
TOO_FAST = "You are sending messages too fast; wait a moment."


def chat_bucket(per_minute: float) -> Bucket:
    """Bursts of :data:`CHAT_BURST`, then ``per_minute`` (``MEETNOW_LIMIT_CHAT_PER_MINUTE``)."""
    return Bucket(burst=CHAT_BURST, per_second=per_minute / 60)


async def relay_chat(
    server: MeetnowServer, room: Room, sender_id: str, message: ChatMessage
) -> None:
    """Send ``message`` to everyone in the call, the sender included, or raise
    :class:`ProtocolError` (``message_too_long``, ``invalid_message``, ``chat_rate_limited``)."""
    sender = room.participants.get(sender_id)
    if sender is None:
        raise ProtocolError(ErrorCode.OUT_OF_ORDER, "You are not in the call.")
    text = message.text
    if len(text) > MAX_CHAT_CHARACTERS:  # code points: Python's len of a str
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LONG, TOO_LONG)
    if not text.strip():
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, EMPTY)
    if not _allowance(server, room, sender.session).allow():
        # Not counted as a refusal of the connection's own limiter: only messages past that one
        # lead to the 1008 flood close, so a chat flood within it never drops the call.
        raise ProtocolError(ErrorCode.CHAT_RATE_LIMITED, TOO_FAST)
    await server.hub.broadcast(
        room.id,
        ChatBroadcastMessage(
            id=secrets.token_urlsafe(8),
            participant_id=sender.id,
            name=sender.name,
            text=text,
            sent_at=int(server.rooms.now() * 1000),
        ),
        exclude=None,
    )


def _allowance(server: MeetnowServer, room: Room, session: str) -> TokenBucket:
    """The session's chat bucket, kept with the room, so that reconnecting does not refill it.
    It runs on the event loop's clock, as the connection's own message limiter does."""
    bucket = room.chat_allowance.get(session)
    if bucket is None:
        config = chat_bucket(server.settings.limit_chat_per_minute)
        bucket = room.chat_allowance[session] = TokenBucket(config, asyncio.get_running_loop().time)
    return bucket
