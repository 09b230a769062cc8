"""The open websocket connections of every room: broadcasts, messages to hosts, replacements.

A send to a dead peer fails inside that connection's own ``send`` (it is swallowed there), so one
broken socket cannot stop a broadcast to the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .protocol import KnockInfo, MediaState, ParticipantInfo, ServerMessage, SpeakersMessage
from .room_model import Participant, Room
from .speaker import Speakers
from .tasks import spawn

if TYPE_CHECKING:
    from .connection import ClientConnection

__all__ = ["RoomHub", "audible_speakers", "knock_info", "participant_info"]


def participant_info(participant: Participant) -> ParticipantInfo:
    return ParticipantInfo(
        id=participant.id,
        name=participant.name,
        media=MediaState(
            audio=participant.audio, video=participant.video, screen=participant.screen
        ),
        host=participant.host,
        muted_by_host=participant.muted_by_host,
        hand_raised_at=participant.hand_raised_at,
    )


def audible_speakers(room: Room, speakers: Speakers) -> SpeakersMessage:
    """The ``speakers`` message for what the relay heard, leaving out anyone whose audio is off
    or muted by a host (or who has left): they are never speaking."""

    def audible(participant_id: str) -> bool:
        participant = room.participants.get(participant_id)
        return participant is not None and participant.audio and not participant.muted_by_host

    dominant = speakers.dominant if speakers.dominant and audible(speakers.dominant) else None
    return SpeakersMessage(
        dominant=dominant, speaking=[who for who in speakers.speaking if audible(who)]
    )


def knock_info(participant: Participant) -> KnockInfo:
    return KnockInfo(id=participant.id, name=participant.name)


class RoomHub:
    """The open connections of every room, for broadcasts and replacements."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, ClientConnection]] = {}
        self._sockets: dict[str, set[ClientConnection]] = {}  # every open socket, joined or not
        self._speakers: dict[str, SpeakersMessage] = {}
        """The last ``speakers`` message each room was sent."""
        self._join_notices: dict[tuple[str, str], list[ServerMessage]] = {}
        """What a joining participant's join earned, sent right after its ``joined`` (by room
        and participant id): e.g. a screen share refused at the room's cap."""

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
                self._speakers.pop(room_id, None)
                for key in [k for k in self._join_notices if k[0] == room_id]:
                    del self._join_notices[key]

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

    def speakers_listener(
        self, find_room: Callable[[str], Room | None]
    ) -> Callable[[str, Speakers], None]:
        """What the relay calls with each room's speaker changes: the room is told, with anyone
        not audible by the room's own state (audio off, muted by a host, gone) left out."""

        def speakers_changed(room_id: str, speakers: Speakers) -> None:
            room = find_room(room_id)
            if room is None or room_id not in self._rooms:
                return
            message = audible_speakers(room, speakers)
            if message != self._speakers.get(room_id, SpeakersMessage(dominant=None, speaking=[])):
                self._speakers[room_id] = message
                spawn(self.broadcast(room_id, message, exclude=None), what="speakers")

        return speakers_changed

    def notice_after_joined(
        self, room_id: str, participant_id: str, message: ServerMessage
    ) -> None:
        """Send ``message`` to the participant right after its ``joined`` (see
        :meth:`after_joined`): what its join earned, that ``joined`` cannot say."""
        self._join_notices.setdefault((room_id, participant_id), []).append(message)

    async def after_joined(self, room_id: str, connection: ClientConnection) -> None:
        """What someone who just entered the call is told after ``joined``: who is speaking, if
        anyone is, and the notices its join earned (:meth:`notice_after_joined`)."""
        await self.send_speakers(room_id, connection)
        notices = self._join_notices.pop((room_id, connection.participant_id or ""), [])
        for notice in notices:
            await connection.send(notice)

    async def send_speakers(self, room_id: str, connection: ClientConnection) -> None:
        """Tell someone who just entered the call who is speaking, if anyone is."""
        message = self._speakers.get(room_id)
        if message is not None and message.speaking:
            await connection.send(message)

    def count(self) -> int:
        return sum(len(members) for members in self._rooms.values())
