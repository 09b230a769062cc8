"""One error hierarchy for meetnow: every refusal a user can meet has its own class."""

from __future__ import annotations

__all__ = [
    "MeetnowError",
    "NotHost",
    "ParticipantRemoved",
    "RateLimited",
    "RoomError",
    "RoomFull",
    "RoomGone",
    "RoomLocked",
    "RoomNotFound",
    "TooManyCandidates",
    "TooManyRooms",
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


class NotHost(RoomError):
    """Only a host may do this."""


class RateLimited(MeetnowError):
    """Too many requests from one source; try again later."""


class TooManyCandidates(MeetnowError):
    """An answer would take a participant past its cap of ICE candidates (each one a destination
    the relay sends connectivity checks to). The protocol answers it ``invalid_message``."""
