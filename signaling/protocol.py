"""The signaling protocol: every websocket message, as pydantic models.

One JSON object per websocket text message, discriminated by ``type``. ``docs/protocol.md`` is the
written form of this module; keep them in step. The server is always the SDP offerer, the browser
always the answerer, so there is never any glare.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, get_args

from pydantic import Field, TypeAdapter, ValidationError

from .errors import MeetnowError
from .protocol_base import (
    MAX_SDP_LENGTH,
    PROTOCOL_VERSION,
    ClientWireMessage,
    ErrorCode,
    IceServerInfo,
    WireMessage,
)
from .protocol_chat import (
    ChatBroadcastMessage,
    ChatMessage,
    LowerHandMessage,
    RaiseHandMessage,
)
from .protocol_media import ScreenShareMessage, Source, SpeakersMessage
from .protocol_netcheck import (
    NetworkCheckAnswerMessage,
    NetworkCheckMessage,
    NetworkCheckOfferMessage,
)

__all__ = [
    "MAX_SDP_LENGTH",
    "PROTOCOL_VERSION",
    "AdmitMessage",
    "AnswerMessage",
    "ChatBroadcastMessage",
    "ChatMessage",
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
    "LowerHandMessage",
    "MakeHostMessage",
    "MediaState",
    "MediaStateMessage",
    "MuteMessage",
    "NetworkCheckAnswerMessage",
    "NetworkCheckMessage",
    "NetworkCheckOfferMessage",
    "OfferMessage",
    "ParticipantInfo",
    "ParticipantJoinedMessage",
    "ParticipantLeftMessage",
    "ParticipantUpdatedMessage",
    "PingMessage",
    "PongMessage",
    "ProtocolError",
    "RaiseHandMessage",
    "RemoveMessage",
    "RoomClosedMessage",
    "RoomInfo",
    "RoomUpdatedMessage",
    "ScreenShareMessage",
    "ServerMessage",
    "SetLobbyMessage",
    "Source",
    "SpeakersMessage",
    "TrackInfo",
    "WaitingMessage",
    "parse_client_message",
]

# ---------------------------------------------------------------- client -> server


class JoinMessage(ClientWireMessage):
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
    screen: bool = False
    """The client shares a screen already (a page reconnecting while it shares): its first
    offer has the screen's m-line."""
    screen_audio: bool = False
    """With ``screen``: the screen comes with tab audio."""


class AnswerMessage(ClientWireMessage):
    """The SDP answer to the server's latest ``offer``."""

    type: Literal["answer"] = "answer"
    revision: int = Field(ge=1)
    """The ``revision`` of the offer this answers."""
    sdp: str = Field(min_length=1, max_length=MAX_SDP_LENGTH)


class MediaStateMessage(ClientWireMessage):
    """The client muted or unmuted its microphone or camera."""

    type: Literal["media_state"] = "media_state"
    audio: bool
    video: bool


class _TargetedMessage(ClientWireMessage):
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


class LockMessage(ClientWireMessage):
    """Host: lock or unlock the room (no new joins while locked)."""

    type: Literal["lock"] = "lock"
    locked: bool


class SetLobbyMessage(ClientWireMessage):
    """Host: turn the lobby on or off."""

    type: Literal["set_lobby"] = "set_lobby"
    enabled: bool


class EndMeetingMessage(ClientWireMessage):
    """Host: end the meeting for everyone; the link then answers 410."""

    type: Literal["end_meeting"] = "end_meeting"


class PingMessage(ClientWireMessage):
    """Application-level keepalive; answered by ``pong``."""

    type: Literal["ping"] = "ping"


class LeaveMessage(ClientWireMessage):
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
    | EndMeetingMessage
    | ScreenShareMessage
    | NetworkCheckMessage
    | NetworkCheckAnswerMessage
    | ChatMessage
    | RaiseHandMessage
    | LowerHandMessage,
    Field(discriminator="type"),
]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_CLIENT_TYPES = frozenset(
    model.model_fields["type"].default for model in get_args(get_args(ClientMessage)[0])
)
"""Every ``type`` a client may send, read off the union so that adding a message is one edit."""


# ---------------------------------------------------------------- server -> client


class MediaState(WireMessage):
    """Whether a participant's microphone and camera are on."""

    audio: bool
    video: bool
    screen: bool = False
    """This participant shares a screen now."""


class ParticipantInfo(WireMessage):
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
    hand_raised_at: int | None = None
    """When the hand went up (milliseconds since the epoch, server time), or None: pages order
    raised hands by it, ties by ``id``."""


class RoomInfo(WireMessage):
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


class TrackInfo(WireMessage):
    """What one m-line of an offer carries."""

    participant: str
    """The participant whose media this is; the client's own id for the tracks it publishes."""
    kind: Literal["audio", "video"]
    source: Source
    """``camera`` or ``screen`` (kind ``video``), ``microphone`` or ``screen_audio`` (kind
    ``audio``)."""


class JoinedMessage(WireMessage):
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
    hand_raised_at: int | None = None
    """Your own raised hand's time (``ParticipantInfo.hand_raised_at``), or None: a session's
    hand is kept across reconnects and reloads, and ``participants`` does not list you."""
    ice_servers: list[IceServerInfo]
    ice_transport_policy: Literal["all", "relay"] = "all"
    """The ``RTCPeerConnection``'s ``iceTransportPolicy``: ``relay`` sends media through the TURN
    servers of ``ice_servers`` only (``MEETNOW_ICE_TRANSPORT_POLICY``)."""


class OfferMessage(WireMessage):
    """An SDP offer to answer with ``answer``. ``tracks`` maps each active m-line (by mid) to whose
    media it carries; m-lines not listed are idle. The m-lines whose participant is the client itself
    are the ones it publishes on (direction ``sendonly`` in its answer)."""

    type: Literal["offer"] = "offer"
    revision: int
    sdp: str
    tracks: dict[str, TrackInfo]


class WaitingMessage(WireMessage):
    """Answer to ``join`` in a room with a lobby: wait until a host admits you (``joined`` and an
    ``offer`` follow) or denies you (``error`` ``denied``)."""

    type: Literal["waiting"] = "waiting"
    room: RoomInfo


class KnockInfo(WireMessage):
    id: str
    name: str
    """Untrusted text."""


class KnockMessage(WireMessage):
    """To hosts: someone waits in the lobby."""

    type: Literal["knock"] = "knock"
    participant: KnockInfo


class KnockResolvedMessage(WireMessage):
    """To hosts: a knock was answered, or the knocker left."""

    type: Literal["knock_resolved"] = "knock_resolved"
    participant_id: str
    admitted: bool


class RoomUpdatedMessage(WireMessage):
    """The room's lock or lobby setting changed."""

    type: Literal["room_updated"] = "room_updated"
    room: RoomInfo


class ParticipantJoinedMessage(WireMessage):
    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


class ParticipantUpdatedMessage(WireMessage):
    type: Literal["participant_updated"] = "participant_updated"
    participant: ParticipantInfo


class ParticipantLeftMessage(WireMessage):
    type: Literal["participant_left"] = "participant_left"
    participant_id: str


class PongMessage(WireMessage):
    type: Literal["pong"] = "pong"


class ErrorMessage(WireMessage):
    """Something the client sent was refused. ``fatal`` errors are followed by the server closing
    the connection; others leave the connection and the call as they were."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    fatal: bool = False


class RoomClosedMessage(WireMessage):
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
    | SpeakersMessage
    | NetworkCheckOfferMessage
    | ChatBroadcastMessage
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
