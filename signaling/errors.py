"""One error hierarchy for meetnow: every refusal a user can meet has its own class.

Every exception meetnow raises on purpose derives from :class:`MeetnowError`: these here, and
:class:`~signaling.protocol.ProtocolError` (a refused websocket message, beside the models it
validates) and :class:`~signaling.aiortc_hooks.IcePortsExhausted` (an ``OSError`` too, as aioice
expects). Chat adapters derive their own failures from it as well.
"""

from __future__ import annotations

__all__ = [
    "MeetnowError",
    "ParticipantRemoved",
    "RateLimited",
    "RoomError",
    "RoomFull",
    "RoomGone",
    "RoomLocked",
    "RoomNotFound",
    "TemporarilyUnavailable",
    "TooManyCandidates",
    "TooManyRooms",
    "WorkerDied",
    "WorkerMessageInvalid",
]


class MeetnowError(Exception):
    """Base of every error meetnow raises on purpose. ``str(error)`` is fit to show a user."""


class RoomError(MeetnowError):
    """A room operation was refused."""


class RoomNotFound(RoomError):
    """The room does not exist, has expired or has closed (deliberately indistinguishable)."""


class RoomFull(RoomError):
    """The room is at its participant cap."""


class TooManyRooms(RoomError):
    """The server is at its cap of open rooms."""


class RoomGone(RoomNotFound):
    """The room existed but has ended or expired; its link never comes back to life (HTTP 410)."""


class RoomLocked(RoomError):
    """The host locked the room: nobody new gets in."""


class ParticipantRemoved(RoomError):
    """The host removed this session (or denied it at the lobby); it cannot come straight back."""


class RateLimited(MeetnowError):
    """Too many requests from one source; try again later."""


class TemporarilyUnavailable(MeetnowError):
    """Redis, which every node shares, cannot be reached (or this node is draining): new joins
    and new rooms wait (calls in progress go on). HTTP 503, error code
    ``temporarily_unavailable``."""


class TooManyCandidates(MeetnowError):
    """An answer would take a participant past its cap of ICE candidates (each one a destination
    the relay sends connectivity checks to). The protocol answers it ``invalid_message``."""


class WorkerDied(MeetnowError, ConnectionError):
    """The relay worker process holding a room's media exited (or never answered). Also a
    ``ConnectionError``: to a participant it is a lost connection, and code that handles one
    handles the other."""


class WorkerMessageInvalid(MeetnowError, ValueError):
    """A line between the main process and a relay worker is not a message of the worker
    protocol (:mod:`signaling.worker_ipc`): a bug on one side, never a user's doing."""
