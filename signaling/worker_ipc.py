"""The messages between the main process and a relay worker, typed and checked at the boundary.

One JSON object a line: requests on the worker's stdin, replies and events on its stdout (its logs
go to stderr), and the worker's start-up configuration in ``MEETNOW_WORKER_CONFIG``. Every line is
parsed into one of the models below by :func:`parse_request` or :func:`parse_reply`, which raise
:class:`~signaling.errors.WorkerMessageInvalid` naming what is wrong, so that neither side ever
reads a field out of a raw dict (and a mistake is a clear error, never a ``KeyError``).

Requests, each with an ``id`` that its ``result`` echoes: ``add`` (room, participant, kinds),
``answer`` (room, participant, revision, sdp), ``forward`` (room, participant, kind, enabled),
``remove`` (room, participant), ``screen_share`` (room, participant, sources: empty stops),
``stats`` (the worker's counts, forwarded totals included, for the metrics). Worker to main:
``result`` (id, error or result), ``offer`` (room, participant, offer), ``media_connected``
(seconds from a peer connection's creation to its first 'connected') and ``speakers`` (room,
dominant, speaking: a room's speakers changed, at most a few times a second).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import WorkerMessageInvalid
from .forwarding import Kind
from .protocol import ErrorCode, OfferMessage, ProtocolError, Source
from .settings import IceServer

__all__ = [
    "AddRequest",
    "AnswerRequest",
    "ForwardRequest",
    "MediaConnectedEvent",
    "OfferEvent",
    "RemoveRequest",
    "ResultReply",
    "ScreenShareRequest",
    "SpeakersEvent",
    "StatsRequest",
    "WorkerFailure",
    "WorkerReply",
    "WorkerRequest",
    "WorkerSpec",
    "WorkerStats",
    "encode",
    "parse_reply",
    "parse_request",
    "parse_spec",
    "request_id_of",
]

T = TypeVar("T")


class _IpcMessage(BaseModel):
    # Strict and closed: both ends are this code base, so anything unexpected is a bug to report.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ------------------------------------------------------------------ main process -> worker


class AddRequest(_IpcMessage):
    """Give a participant a peer connection in the worker; its offers come back as events."""

    op: Literal["add"] = "add"
    id: int = 0
    room: str
    participant: str
    kinds: list[Kind]
    """What the participant publishes."""
    screen: list[Source] = []
    """Screen sources it publishes from its first offer (a reconnect while sharing)."""


class AnswerRequest(_IpcMessage):
    """Apply a participant's SDP answer to the offer of this revision."""

    op: Literal["answer"] = "answer"
    id: int = 0
    room: str
    participant: str
    revision: int
    sdp: str


class ForwardRequest(_IpcMessage):
    """Start or stop forwarding one kind of a participant's media (a host's mute)."""

    op: Literal["forward"] = "forward"
    id: int = 0
    room: str
    participant: str
    kind: Kind
    enabled: bool


class RemoveRequest(_IpcMessage):
    """Close a participant's peer connection."""

    op: Literal["remove"] = "remove"
    id: int = 0
    room: str
    participant: str


class ScreenShareRequest(_IpcMessage):
    """Start publishing a participant's screen (``sources``) or stop (empty)."""

    op: Literal["screen_share"] = "screen_share"
    id: int = 0
    room: str
    participant: str
    sources: list[Source]


class StatsRequest(_IpcMessage):
    """Ask for the worker's counts (also how the pool learns a new worker is up)."""

    op: Literal["stats"] = "stats"
    id: int = 0


WorkerRequest = Annotated[
    AddRequest | AnswerRequest | ForwardRequest | RemoveRequest | ScreenShareRequest | StatsRequest,
    Field(discriminator="op"),
]


# ------------------------------------------------------------------ worker -> main process


class WorkerFailure(_IpcMessage):
    """Why a request failed: the protocol error the participant is sent."""

    code: ErrorCode
    message: str
    fatal: bool

    @classmethod
    def of(cls, error: ProtocolError) -> WorkerFailure:
        return cls(code=error.code, message=error.message, fatal=error.fatal)

    def to_error(self) -> ProtocolError:
        return ProtocolError(self.code, self.message, fatal=self.fatal)


class WorkerStats(_IpcMessage):
    """A worker's answer to ``stats``."""

    pid: int
    peer_connections: int
    forwarded_packets: int
    forwarded_bytes: int


class ResultReply(_IpcMessage):
    """The answer to one request: ``error`` None means it succeeded."""

    op: Literal["result"] = "result"
    id: int | None
    """The request's id; None when the request was too malformed to carry one."""
    error: WorkerFailure | None = None
    result: WorkerStats | None = None
    """Only ``stats`` has a result."""


class OfferEvent(_IpcMessage):
    """An offer for a participant, to send on its websocket."""

    op: Literal["offer"] = "offer"
    room: str
    participant: str
    offer: OfferMessage


class MediaConnectedEvent(_IpcMessage):
    """A peer connection reached 'connected' this long after its creation (for the histogram)."""

    op: Literal["media_connected"] = "media_connected"
    seconds: float


class SpeakersEvent(_IpcMessage):
    """A room's speakers changed (the worker rate-limits these per room)."""

    op: Literal["speakers"] = "speakers"
    room: str
    dominant: str | None
    speaking: list[str]


WorkerReply = Annotated[
    ResultReply | OfferEvent | MediaConnectedEvent | SpeakersEvent, Field(discriminator="op")
]


# ------------------------------------------------------------------ start-up configuration


class WorkerSpec(_IpcMessage):
    """What a worker is started with (``MEETNOW_WORKER_CONFIG``): its part of the settings."""

    ice_servers: list[IceServer]
    public_address: str | None
    port_range: tuple[int, int] | None
    host_addresses: list[str]
    log_format: str = "text"


# ------------------------------------------------------------------ parsing and encoding

_requests: TypeAdapter[WorkerRequest] = TypeAdapter(WorkerRequest)
_replies: TypeAdapter[WorkerReply] = TypeAdapter(WorkerReply)


def parse_request(line: str | bytes) -> WorkerRequest:
    """A request read by a worker, or :class:`WorkerMessageInvalid` saying what is wrong."""
    return _parse(_requests, line, "request")


def parse_reply(line: str | bytes) -> WorkerReply:
    """A reply or event read by the main process, or :class:`WorkerMessageInvalid`."""
    return _parse(_replies, line, "reply")


def parse_spec(text: str) -> WorkerSpec:
    """The worker's start-up configuration, or :class:`WorkerMessageInvalid`."""
    try:
        return WorkerSpec.model_validate_json(text)
    except ValidationError as error:
        raise WorkerMessageInvalid(f"bad relay worker configuration: {_first(error)}") from None


def request_id_of(line: str | bytes) -> int | None:
    """The ``id`` of a request that :func:`parse_request` refused, if it has a usable one: its
    sender is then answered, rather than left waiting."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def encode(message: _IpcMessage) -> bytes:
    """One line of the worker protocol."""
    return message.model_dump_json().encode() + b"\n"


def _parse(adapter: TypeAdapter[T], line: str | bytes, what: str) -> T:
    try:
        return adapter.validate_json(line)
    except ValidationError as error:
        raise WorkerMessageInvalid(f"bad relay worker {what}: {_first(error)}") from None


def _first(error: ValidationError) -> str:
    """The first problem, as ``where: what`` (no input values: an SDP could be long)."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part)[:32] for part in first["loc"]) or "line"
    return f"{where}: {first['msg']}"
