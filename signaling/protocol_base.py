"""What every signaling message shares: the protocol version, the error codes, the model bases.

``protocol.py`` gathers the messages into the unions the server parses and sends; the messages of a
feature live in a module of their own (``protocol_media.py``, ...), built on the bases here.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = [
    "MAX_SDP_LENGTH",
    "PROTOCOL_VERSION",
    "ClientWireMessage",
    "ErrorCode",
    "IceServerInfo",
    "WireMessage",
]

PROTOCOL_VERSION = 1
"""Bumped on any change a deployed client could not understand."""

MAX_SDP_LENGTH = 200_000
"""An SDP answer for a full room (about 100 m-lines) stays well under this."""


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` message. Clients switch on it; the ``message`` is for people."""

    MALFORMED = "malformed"
    """The text was not a JSON object."""
    UNKNOWN_TYPE = "unknown_type"
    """``type`` is missing or names no message of this protocol."""
    INVALID_MESSAGE = "invalid_message"
    """A known message with missing, extra or out-of-range fields."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """``join`` asked for a protocol version this server does not speak."""
    OUT_OF_ORDER = "out_of_order"
    """A valid message at the wrong time (``answer`` before ``join``, a second ``join``...)."""
    ROOM_NOT_FOUND = "room_not_found"
    """The room does not exist, has expired or has ended."""
    ROOM_FULL = "room_full"
    """The room has reached its participant cap."""
    ROOM_ENDED = "room_ended"
    """The meeting has ended or its link has expired (the page answers 410)."""
    LOCKED = "locked"
    """A host locked the room: nobody new gets in."""
    REMOVED = "removed"
    """A host removed this session; it cannot come straight back."""
    DENIED = "denied"
    """A host turned this knock away at the lobby."""
    NOT_HOST = "not_host"
    """Only a host may send this message."""
    RATE_LIMITED = "rate_limited"
    """Too many messages; slow down (a flood closes the connection, 1008)."""
    TOO_MANY_CANDIDATES = "too_many_candidates"
    """An answer would take the connection past its cap of ICE candidates; the offer still
    waits for an answer within the cap."""
    NEGOTIATION_FAILED = "negotiation_failed"
    """The SDP answer could not be applied; the client should rejoin."""
    NO_PORTS = "no_ports"
    """The relay has no free UDP port left in ``MEETNOW_ICE_PORT_RANGE`` for this participant;
    nobody else is affected. Joining later may work."""
    TOO_MANY_SCREEN_SHARES = "too_many_screen_shares"
    """The room already has ``MEETNOW_ROOM_MAX_SCREEN_SHARES`` screens shared; nothing changed."""
    MESSAGE_TOO_LONG = "message_too_long"
    """A ``chat`` message over 2,000 characters (Unicode code points); nobody received it."""
    CHAT_RATE_LIMITED = "chat_rate_limited"
    """Too many ``chat`` messages from this participant; this one was not sent. The connection
    and the call go on (these refusals never count toward the 1008 flood close)."""
    SERVER_ERROR = "server_error"
    """Something failed on our side; nobody else is affected."""


class WireMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientWireMessage(WireMessage):
    # Strict: "revision": true or "audio": "yes" are errors, not guesses.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class IceServerInfo(WireMessage):
    """An ``RTCIceServer`` for the browser's peer connection (in ``joined``, and in the network
    check's ``network_check_offer``)."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None
