"""The ``screen_share`` message: a participant starts or stops publishing a screen.

The room keeps who shares (``Participant.screen``, capped by ``MEETNOW_ROOM_MAX_SCREEN_SHARES``);
the relay adds the sharer's screen m-lines and everyone else's m-lines for it, or sends them all
inactive; the others hear of it through ``participant_updated`` (``media.screen``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .protocol import (
    ErrorCode,
    JoinMessage,
    ParticipantUpdatedMessage,
    ProtocolError,
    ScreenShareMessage,
    Source,
)
from .room_hub import participant_info
from .room_model import Participant, Room

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["join_screen_sources", "run_screen_share", "screen_sources"]


def screen_sources(sharing: bool, audio: bool) -> list[Source]:
    """The sources a screen share publishes: ``screen``, and ``screen_audio`` with tab audio."""
    if not sharing:
        return []
    return ["screen", "screen_audio"] if audio else ["screen"]


def _shares_full(server: MeetnowServer, room: Room, asking: Participant) -> bool:
    """Whether the others' shares fill the room's cap (a reconnecting sharer's own earlier
    share is not one more)."""
    sharing = sum(1 for p in room.participants.values() if p.screen and p is not asking)
    return sharing >= server.settings.room_max_screen_shares


def _too_many_shares(server: MeetnowServer) -> ProtocolError:
    limit = server.settings.room_max_screen_shares
    screens = "screen" if limit == 1 else "screens"
    return ProtocolError(
        ErrorCode.TOO_MANY_SCREEN_SHARES,
        f"This meeting already has {limit} shared {screens}, the most it allows at once; "
        "try again when someone stops sharing.",
    )


def join_screen_sources(
    server: MeetnowServer, room: Room, participant: Participant, message: JoinMessage
) -> list[Source]:
    """What a joining page shares from its first offer (a reconnect while sharing): nothing if
    it does not share, or if the room's screen shares are full by now: then its offer has no
    screen, and right after ``joined`` it gets the non-fatal ``too_many_screen_shares`` error
    (as a refused ``screen_share`` does), so the page can tell its user and stop the capture."""
    refused = message.screen and _shares_full(server, room, participant)
    participant.screen = message.screen and not refused
    if refused:
        notice = _too_many_shares(server).to_message()
        server.hub.notice_after_joined(room.id, participant.id, notice)
    return screen_sources(participant.screen, message.screen_audio)


async def run_screen_share(
    server: MeetnowServer, room: Room, sender_id: str, message: ScreenShareMessage
) -> None:
    """Start or stop the sender's screen share; the state it has already is a no-op."""
    participant = room.participants.get(sender_id)
    if participant is None or participant.screen == message.sharing:
        return
    if message.sharing and _shares_full(server, room, participant):
        raise _too_many_shares(server)
    # Set before the relay's await: a second share arriving meanwhile counts this one.
    participant.screen = message.sharing
    sources = screen_sources(message.sharing, message.audio)
    await server.relay.set_screen_share(room.id, participant.id, sources)
    await server.hub.broadcast(
        room.id,
        ParticipantUpdatedMessage(participant=participant_info(participant)),
        exclude=participant.id,
    )
