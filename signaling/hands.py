"""Raised hands: when each participant's hand went up, told to everyone in the call.

The time is the room service's clock (wall clock, milliseconds since the epoch), so every page
orders the raised hands the same way. Raising again keeps the first time: nobody jumps the queue.
A hand is kept by session, as a host's mute is: a reconnect (same session) keeps it up, and only
lowering it, a host lowering it, leaving with ``leave`` or being removed takes it down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .protocol import ErrorCode, ParticipantUpdatedMessage, ProtocolError
from .room_hub import participant_info
from .rooms import Participant, Room

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["forget_hand", "set_hand"]


async def set_hand(server: MeetnowServer, room: Room, participant_id: str, raised: bool) -> None:
    """Raise or lower ``participant_id``'s hand and tell everyone in the call, the owner included
    (so that every page agrees). Raises :class:`ProtocolError` if nobody in the call has that id."""
    participant = room.participants.get(participant_id)
    if participant is None:
        raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Nobody with that id is here.")
    if not raised:
        _lower(room, participant)
    elif participant.hand_raised_at is None:
        raised_at = int(server.rooms.now() * 1000)
        participant.hand_raised_at = raised_at
        room.raised_hands[participant.session] = raised_at
    await server.hub.broadcast(
        room.id, ParticipantUpdatedMessage(participant=participant_info(participant)), exclude=None
    )


def forget_hand(room: Room, participant_id: str | None) -> None:
    """The participant leaves for good (``leave``, or a host removed them): their hand does not
    come back if their session joins again. Nobody is told: ``participant_left`` follows."""
    participant = room.participants.get(participant_id or "")
    if participant is not None:
        _lower(room, participant)


def _lower(room: Room, participant: Participant) -> None:
    participant.hand_raised_at = None
    room.raised_hands.pop(participant.session, None)
