"""The signaling protocol: every websocket message, as pydantic models.

One JSON object per websocket text message, discriminated by ``type``. ``docs/protocol.md`` is the
written form of this module; keep them in step. The server is always the SDP offerer, the browser
always the answerer, so there is never any glare.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import MeetnowError

__all__ = [
    "PROTOCOL_VERSION",
    "AdmitMessage",
    "AnswerMessage",
    "ClientMessage",
    "DenyMessage",
    "EndMeetingMessage",
    "ErrorCode",
    "ErrorMessage",
    "IceServerInfo",
    "JoinMessage",
    "JoinedMessage",
    "KnockInfo",
    "KnockMessage",
    "KnockResolvedMessage",
    "LeaveMessage",
    "LockMessage",
    "MakeHostMessage",
    "MediaState",
    "MediaStateMessage",
    "MuteMessage",
    "OfferMessage",
    "ParticipantInfo",
    "ParticipantJoinedMessage",
    "ParticipantLeftMessage",
    "ParticipantUpdatedMessage",
    "PingMessage",
    "PongMessage",
    "ProtocolError",
    "RemoveMessage",
    "RoomClosedMessage",
    "RoomInfo",
    "RoomUpdatedMessage",
    "ServerMessage",
    "SetLobbyMessage",
    "TrackInfo",
    "WaitingMessage",
    "parse_client_message",
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
    SERVER_ERROR = "server_error"
    """Something failed on our side; nobody else is affected."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ClientMessage(_Message):
    # Strict: "revision": true or "audio": "yes" are errors, not guesses.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---------------------------------------------------------------- client -> server


class JoinMessage(_ClientMessage):
    """First message on a connection: enter the room under a display name."""

    type: Literal["join"] = "join"
    version: int = PROTOCOL_VERSION
    """Protocol version the client speaks."""
    name: str = Field(min_length=1, max_length=256)
    """Display name; trimmed, then capped by the server's ``name_max_length``."""
    session: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    """Random id the page keeps across reconnects: a join with the same session replaces the old
    connection at once, so a reconnect never leaves a ghost tile."""
    audio: bool = True
    """Whether the client has a microphone track to publish."""
    video: bool = True
    """Whether the client has a camera track to publish."""
    host_token: str | None = Field(default=None, max_length=64)
    """The host secret handed to the room's creator (never part of the shareable link)."""


class AnswerMessage(_ClientMessage):
    """The SDP answer to the server's latest ``offer``."""

    type: Literal["answer"] = "answer"
    revision: int = Field(ge=1)
    """The ``revision`` of the offer this answers."""
    sdp: str = Field(min_length=1, max_length=MAX_SDP_LENGTH)


class MediaStateMessage(_ClientMessage):
    """The client muted or unmuted its microphone or camera."""

    type: Literal["media_state"] = "media_state"
    audio: bool
    video: bool


class _TargetedMessage(_ClientMessage):
    participant_id: str = Field(min_length=1, max_length=32)
    """Whom the host command is about."""


class AdmitMessage(_TargetedMessage):
    """Host: let someone in from the lobby."""

    type: Literal["admit"] = "admit"


class DenyMessage(_TargetedMessage):
    """Host: turn someone away from the lobby."""

    type: Literal["deny"] = "deny"


class RemoveMessage(_TargetedMessage):
    """Host: remove someone from the call; their session cannot come straight back."""

    type: Literal["remove"] = "remove"


class MuteMessage(_TargetedMessage):
    """Host: stop (or resume) forwarding someone's audio."""

    type: Literal["mute"] = "mute"
    muted: bool = True


class MakeHostMessage(_TargetedMessage):
    """Host: give host rights to another participant."""

    type: Literal["make_host"] = "make_host"


class LockMessage(_ClientMessage):
    """Host: lock or unlock the room (no new joins while locked)."""

    type: Literal["lock"] = "lock"
    locked: bool


class SetLobbyMessage(_ClientMessage):
    """Host: turn the lobby on or off."""

    type: Literal["set_lobby"] = "set_lobby"
    enabled: bool


class EndMeetingMessage(_ClientMessage):
    """Host: end the meeting for everyone; the link then answers 410."""

    type: Literal["end_meeting"] = "end_meeting"


class PingMessage(_ClientMessage):
    """Application-level keepalive; answered by ``pong``."""

    type: Literal["ping"] = "ping"


class LeaveMessage(_ClientMessage):
    """The participant leaves; the server closes the connection."""

    type: Literal["leave"] = "leave"


ClientMessage = Annotated[
    JoinMessage
    | AnswerMessage
    | MediaStateMessage
    | PingMessage
    | LeaveMessage
    | AdmitMessage
    | DenyMessage
    | RemoveMessage
    | MuteMessage
    | MakeHostMessage
    | LockMessage
    | SetLobbyMessage
    | EndMeetingMessage,
    Field(discriminator="type"),
]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_CLIENT_TYPES = frozenset(
    {
        "join",
        "answer",
        "media_state",
        "ping",
        "leave",
        "admit",
        "deny",
        "remove",
        "mute",
        "make_host",
        "lock",
        "set_lobby",
        "end_meeting",
    }
)


# ---------------------------------------------------------------- server -> client


class MediaState(_Message):
    """Whether a participant's microphone and camera are on."""

    audio: bool
    video: bool


class ParticipantInfo(_Message):
    """What everyone in a room knows about a participant."""

    id: str
    """Opaque id, unique within the room."""
    name: str
    """Display name: untrusted text, to be shown with ``textContent`` only."""
    media: MediaState
    host: bool = False
    """Has host rights."""
    muted_by_host: bool = False
    """A host stopped forwarding this participant's audio."""


class RoomInfo(_Message):
    """The room as the client needs it."""

    id: str
    topic: str | None
    url: str
    """The shareable link."""
    max_participants: int
    locked: bool = False
    """Nobody new gets in."""
    lobby: bool = False
    """Newcomers wait for a host."""


class IceServerInfo(_Message):
    """An ``RTCIceServer`` for the browser's peer connection."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class TrackInfo(_Message):
    """What one m-line of an offer carries."""

    participant: str
    """The participant whose media this is; the client's own id for the tracks it publishes."""
    kind: Literal["audio", "video"]


class JoinedMessage(_Message):
    """Answer to ``join``: you are in. An ``offer`` follows."""

    type: Literal["joined"] = "joined"
    version: int = PROTOCOL_VERSION
    participant_id: str
    host: bool = False
    """Whether you have host rights."""
    room: RoomInfo
    participants: list[ParticipantInfo]
    """Everyone else already in the room."""
    waiting: list[KnockInfo] = []
    """For hosts: who waits in the lobby now."""
    ice_servers: list[IceServerInfo]
    ice_transport_policy: Literal["all", "relay"] = "all"
    """The ``RTCPeerConnection``'s ``iceTransportPolicy``: ``relay`` sends media through the TURN
    servers of ``ice_servers`` only (``MEETNOW_ICE_TRANSPORT_POLICY``)."""


class OfferMessage(_Message):
    """An SDP offer to answer with ``answer``. ``tracks`` maps each active m-line (by mid) to whose
    media it carries; m-lines not listed are idle. The m-lines whose participant is the client itself
    are the ones it publishes on (direction ``sendonly`` in its answer)."""

    type: Literal["offer"] = "offer"
    revision: int
    sdp: str
    tracks: dict[str, TrackInfo]


class WaitingMessage(_Message):
    """Answer to ``join`` in a room with a lobby: wait until a host admits you (``joined`` and an
    ``offer`` follow) or denies you (``error`` ``denied``)."""

    type: Literal["waiting"] = "waiting"
    room: RoomInfo


class KnockInfo(_Message):
    id: str
    name: str
    """Untrusted text."""


class KnockMessage(_Message):
    """To hosts: someone waits in the lobby."""

    type: Literal["knock"] = "knock"
    participant: KnockInfo


class KnockResolvedMessage(_Message):
    """To hosts: a knock was answered, or the knocker left."""

    type: Literal["knock_resolved"] = "knock_resolved"
    participant_id: str
    admitted: bool


class RoomUpdatedMessage(_Message):
    """The room's lock or lobby setting changed."""

    type: Literal["room_updated"] = "room_updated"
    room: RoomInfo


class ParticipantJoinedMessage(_Message):
    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


class ParticipantUpdatedMessage(_Message):
    type: Literal["participant_updated"] = "participant_updated"
    participant: ParticipantInfo


class ParticipantLeftMessage(_Message):
    type: Literal["participant_left"] = "participant_left"
    participant_id: str


class PongMessage(_Message):
    type: Literal["pong"] = "pong"


class ErrorMessage(_Message):
    """Something the client sent was refused. ``fatal`` errors are followed by the server closing
    the connection; others leave the connection and the call as they were."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    fatal: bool = False


class RoomClosedMessage(_Message):
    """The room ended; the connection closes after this."""

    type: Literal["room_closed"] = "room_closed"
    reason: Literal["expired", "ended", "server_shutdown"]
    """``ended``: a host ended the meeting for everyone."""


ServerMessage = (
    JoinedMessage
    | WaitingMessage
    | KnockMessage
    | KnockResolvedMessage
    | RoomUpdatedMessage
    | OfferMessage
    | ParticipantJoinedMessage
    | ParticipantUpdatedMessage
    | ParticipantLeftMessage
    | PongMessage
    | ErrorMessage
    | RoomClosedMessage
)


class ProtocolError(MeetnowError):
    """A client message that cannot be accepted, with the error to send back."""

    def __init__(self, code: ErrorCode, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal

    def to_message(self) -> ErrorMessage:
        return ErrorMessage(code=self.code, message=self.message, fatal=self.fatal)


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one websocket message from a client, or raise :class:`ProtocolError` saying why not."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError(ErrorCode.MALFORMED, "Message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "Message must be a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _CLIENT_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) <= 32 else None
        detail = f"Unknown message type {shown!r}." if shown else "Missing or invalid 'type'."
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, detail)
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part)[:32] for part in first["loc"][1:3]) or kind
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"Invalid '{kind}' message: {where}: {first['msg']}."
        ) from None


def dump_server_message(message: ServerMessage) -> str:
    """Serialize a server message as sent on the wire."""
    return message.model_dump_json()
