"""The open websocket connections of every room: broadcasts, messages to hosts, replacements.

A send to a dead peer fails inside that connection's own ``send`` (it is swallowed there), so one
broken socket cannot stop a broadcast to the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .protocol import KnockInfo, MediaState, ParticipantInfo, ServerMessage
from .room_model import Participant, Room

if TYPE_CHECKING:
    from .connection import ClientConnection

__all__ = ["RoomHub", "knock_info", "participant_info"]


def participant_info(participant: Participant) -> ParticipantInfo:
    return ParticipantInfo(
        id=participant.id,
        name=participant.name,
        media=MediaState(audio=participant.audio, video=participant.video),
        host=participant.host,
        muted_by_host=participant.muted_by_host,
        hand_raised_at=participant.hand_raised_at,
    )


def knock_info(participant: Participant) -> KnockInfo:
    return KnockInfo(id=participant.id, name=participant.name)


class RoomHub:
    """The open connections of every room, for broadcasts and replacements."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, ClientConnection]] = {}
        self._sockets: dict[str, set[ClientConnection]] = {}  # every open socket, joined or not

    def track(self, room_id: str, connection: ClientConnection) -> None:
        """A socket opened on the room's page (it may never join)."""
        self._sockets.setdefault(room_id, set()).add(connection)

    def untrack(self, room_id: str, connection: ClientConnection) -> None:
        sockets = self._sockets.get(room_id)
        if sockets is not None:
            sockets.discard(connection)
            if not sockets:
                del self._sockets[room_id]

    def unjoined(self, room_id: str) -> list[ClientConnection]:
        """Open sockets of the room that have not joined (or were refused, or left)."""
        return [c for c in self._sockets.get(room_id, ()) if c.participant_id is None]

    def add(self, room_id: str, participant_id: str, connection: ClientConnection) -> None:
        self._rooms.setdefault(room_id, {})[participant_id] = connection

    def remove(self, room_id: str, participant_id: str) -> None:
        members = self._rooms.get(room_id)
        if members is not None:
            members.pop(participant_id, None)
            if not members:
                del self._rooms[room_id]

    def get(self, room_id: str, participant_id: str) -> ClientConnection | None:
        return self._rooms.get(room_id, {}).get(participant_id)

    def connections(self, room_id: str) -> list[ClientConnection]:
        return list(self._rooms.get(room_id, {}).values())

    async def broadcast(self, room_id: str, message: ServerMessage, *, exclude: str | None) -> None:
        """Send to everyone in the call (not to people waiting in the lobby)."""
        for connection in self.connections(room_id):
            if connection.in_call and connection.participant_id != exclude:
                await connection.send(message)

    async def to_hosts(self, room: Room, message: ServerMessage) -> None:
        for participant in room.hosts():
            connection = self.get(room.id, participant.id)
            if connection is not None and connection.in_call:
                await connection.send(message)

    def count(self) -> int:
        return sum(len(members) for members in self._rooms.values())
