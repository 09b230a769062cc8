"""The messages of chat and raised hands (``docs/protocol.md``, "Chat and hands").

Chat is relayed, never kept: the server sends each accepted message to everyone in the call and
forgets it. Hands are state on each participant (``ParticipantInfo.hand_raised_at``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .protocol_base import ClientWireMessage, WireMessage

__all__ = [
    "MAX_CHAT_CHARACTERS",
    "ChatBroadcastMessage",
    "ChatMessage",
    "LowerHandMessage",
    "RaiseHandMessage",
]

MAX_CHAT_CHARACTERS = 2_000
"""Longest chat message accepted, in Unicode code points (Python's ``len``; a page counts them
with ``[...text].length``, not ``text.length``, which counts UTF-16 units)."""


# ---------------------------------------------------------------- client -> server


class ChatMessage(ClientWireMessage):
    """Say something to everyone in the call."""

    type: Literal["chat"] = "chat"
    text: str
    """Relayed exactly as sent. Its length and emptiness are checked by the server, which answers
    ``message_too_long`` or ``invalid_message`` (the websocket frame cap bounds it before that)."""

    @field_validator("text")
    @classmethod
    def _encodable(cls, text: str) -> str:
        # JSON may carry a lone surrogate ("\ud800"); no UTF-8 text can, so it could not be sent on.
        if any("\ud800" <= ch <= "\udfff" for ch in text):
            raise ValueError("must be Unicode text (it holds a lone surrogate)")
        return text


class RaiseHandMessage(ClientWireMessage):
    """Raise (or lower) one's own hand."""

    type: Literal["raise_hand"] = "raise_hand"
    raised: bool


class LowerHandMessage(ClientWireMessage):
    """Host: lower someone's raised hand."""

    type: Literal["lower_hand"] = "lower_hand"
    participant_id: str = Field(min_length=1, max_length=32)
    """Whose hand."""


# ---------------------------------------------------------------- server -> client


class ChatBroadcastMessage(WireMessage):
    """A chat message, to everyone in the call, its sender included (the sender's confirmation).
    People see only what is said while they are in the call: there is no history."""

    type: Literal["chat"] = "chat"
    id: str
    """Unique within the room (random, so it says nothing of how much was said before)."""
    participant_id: str
    """The sender."""
    name: str
    """The sender's display name when it was sent: untrusted text, shown with ``textContent``."""
    text: str
    """Exactly as sent: untrusted text, shown with ``textContent``."""
    sent_at: int
    """Server wall-clock time, milliseconds since the Unix epoch."""
