"""One error hierarchy for meetnow: every refusal a user can meet has its own class."""

from __future__ import annotations

__all__ = ["MeetnowError", "RoomError", "RoomFull", "RoomNotFound", "TooManyRooms"]


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
