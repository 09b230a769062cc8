"""The host's commands: admit, deny, remove, mute, make host, lower a hand, lock, lobby, end.

Every rule lives in the room service; this module only checks that the sender is a host, calls it,
and tells the room what changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import RoomFull
from .hands import forget_hand, set_hand
from .protocol import (
    AdmitMessage,
    ClientMessage,
    DenyMessage,
    EndMeetingMessage,
    ErrorCode,
    KnockMessage,
    LockMessage,
    LowerHandMessage,
    MakeHostMessage,
    MuteMessage,
    ParticipantUpdatedMessage,
    ProtocolError,
    RemoveMessage,
    SetLobbyMessage,
)
from .room_hub import knock_info, participant_info
from .rooms import Room

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["run_host_command"]


async def run_host_command(
    server: MeetnowServer, room: Room, sender_id: str | None, message: ClientMessage
) -> None:
    """Carry out a host's command, or raise :class:`ProtocolError` (``not_host`` for anyone else)."""
    me = room.participants.get(sender_id or "")
    if me is None or not me.host:
        raise ProtocolError(ErrorCode.NOT_HOST, "Only a host can do that.")
    if isinstance(message, AdmitMessage):
        try:
            if server.rooms.admit(room, message.participant_id) is None:
                raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Nobody with that id is waiting.")
        except RoomFull as error:
            raise ProtocolError(ErrorCode.ROOM_FULL, str(error)) from None
    elif isinstance(message, DenyMessage):
        if server.rooms.deny(room, message.participant_id) is None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Nobody with that id is waiting.")
    elif isinstance(message, RemoveMessage):
        target = server.hub.get(room.id, message.participant_id)
        forget_hand(room, message.participant_id)  # a removed person's hand does not come back
        if server.rooms.remove(room, message.participant_id) is None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Nobody with that id is here.")
        if target is not None:
            await target.removed()
    elif isinstance(message, MuteMessage):
        participant = server.rooms.set_muted(room, message.participant_id, message.muted)
        if participant is None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Nobody with that id is here.")
        await server.relay.set_forwarding(room.id, participant.id, "audio", not message.muted)
        await server.hub.broadcast(
            room.id,
            ParticipantUpdatedMessage(participant=participant_info(participant)),
            exclude=None,
        )
    elif isinstance(message, MakeHostMessage):
        participant = server.rooms.make_host(room, message.participant_id)
        if participant is None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Nobody with that id is here.")
        await server.hub.broadcast(
            room.id,
            ParticipantUpdatedMessage(participant=participant_info(participant)),
            exclude=None,
        )
        # The new host learns who already waits in the lobby.
        new_host = server.hub.get(room.id, participant.id)
        if new_host is not None:
            for waiting in list(room.waiting.values()):
                await new_host.send(KnockMessage(participant=knock_info(waiting)))
    elif isinstance(message, LowerHandMessage):
        await set_hand(server, room, message.participant_id, raised=False)
    elif isinstance(message, LockMessage):
        server.rooms.set_locked(room, message.locked)
    elif isinstance(message, SetLobbyMessage):
        server.rooms.set_lobby(room, message.enabled)
    elif isinstance(message, EndMeetingMessage):
        server.rooms.end(room)
