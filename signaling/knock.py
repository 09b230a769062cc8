"""A host's answer to someone in a room's lobby (Admit / Deny from a page or a chat card), on the
node that holds the lobby: what happened, in the words every caller reports."""

from __future__ import annotations

from typing import Literal

from .errors import RoomFull
from .room_model import Room
from .rooms import RoomService

__all__ = ["KnockAnswer", "answer_knock"]

KnockAnswer = Literal["answered", "not_waiting", "full"]
"""``answered``: let in or turned away; ``not_waiting``: gone from the lobby meanwhile (left,
or answered by another host first); ``full``: admitting them would pass the room's cap."""


def answer_knock(rooms: RoomService, room: Room, participant_id: str, admit: bool) -> KnockAnswer:
    """Admit or deny ``participant_id`` from ``room``'s lobby."""
    try:
        if admit:
            answered = rooms.admit(room, participant_id) is not None
        else:
            answered = rooms.deny(room, participant_id) is not None
    except RoomFull:
        return "full"
    return "answered" if answered else "not_waiting"
