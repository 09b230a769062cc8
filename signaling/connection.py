"""One participant's websocket: the protocol state machine between a client and the room.

Each connection handles its own messages in order; a bad message gets an ``error`` back and never
touches another participant. Broadcasts to the room go through :class:`RoomHub`, which swallows a
dead peer's send failure so one broken socket cannot stop the others.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, WSMsgType, web

from .errors import RoomFull, RoomNotFound
from .forwarding import Kind
from .protocol import (
    PROTOCOL_VERSION,
    AnswerMessage,
    ErrorCode,
    IceServerInfo,
    JoinedMessage,
    JoinMessage,
    LeaveMessage,
    MediaState,
    MediaStateMessage,
    OfferMessage,
    ParticipantInfo,
    ParticipantJoinedMessage,
    ParticipantLeftMessage,
    ParticipantUpdatedMessage,
    PingMessage,
    PongMessage,
    ProtocolError,
    RoomClosedMessage,
    RoomInfo,
    ServerMessage,
    dump_server_message,
    parse_client_message,
)
from .rooms import Participant, Room

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["ClientConnection", "RoomHub"]

logger = logging.getLogger(__name__)

CLOSE_REPLACED = 4000
"""Close code for a connection whose session joined again elsewhere."""
_background_tasks: set[asyncio.Task[None]] = set()


def participant_info(participant: Participant) -> ParticipantInfo:
    return ParticipantInfo(
        id=participant.id,
        name=participant.name,
        media=MediaState(audio=participant.audio, video=participant.video),
    )


class RoomHub:
    """The open connections of every room, for broadcasts and replacements."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, ClientConnection]] = {}

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
        for connection in self.connections(room_id):
            if connection.participant_id != exclude:
                await connection.send(message)

    def count(self) -> int:
        return sum(len(members) for members in self._rooms.values())


class ClientConnection:
    """The server side of one client's websocket."""

    def __init__(self, server: MeetnowServer, room: Room, ws: web.WebSocketResponse) -> None:
        self._server = server
        self._room = room
        self._ws = ws
        self.participant_id: str | None = None
        """Set once ``join`` succeeds."""
        self._session_ready = asyncio.Event()

    async def run(self, join_timeout: float) -> None:
        """Read messages until the socket closes, then leave the room."""
        # An open socket that never joins holds resources for nothing: close it.
        loop = asyncio.get_running_loop()
        idle = loop.call_later(join_timeout, self._close_if_not_joined)
        try:
            async for message in self._ws:
                if message.type == WSMsgType.TEXT:
                    await self._handle_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self._refuse(
                        ProtocolError(ErrorCode.MALFORMED, "Binary messages are not accepted.")
                    )
                if self._ws.closed:
                    break
        finally:
            idle.cancel()
            await self._leave()

    def _close_if_not_joined(self) -> None:
        if self.participant_id is None and not self._ws.closed:
            task = asyncio.ensure_future(self.close())
            _background_tasks.add(task)
            task.add_done_callback(_background_tasks.discard)

    async def send(self, message: ServerMessage) -> None:
        """Send a message; a closed or broken socket is ignored (its own reader cleans up)."""
        if self._ws.closed:
            return
        try:
            await self._ws.send_str(dump_server_message(message))
        except (ConnectionError, RuntimeError):
            pass

    async def close(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        await self._ws.close(code=code, message=message)

    async def _handle_text(self, text: str) -> None:
        try:
            parsed = parse_client_message(text)
            if isinstance(parsed, JoinMessage):
                await self._join(parsed)
            elif isinstance(parsed, PingMessage):
                await self.send(PongMessage())
            elif self.participant_id is None:
                raise ProtocolError(ErrorCode.OUT_OF_ORDER, f"Send 'join' before '{parsed.type}'.")
            elif isinstance(parsed, AnswerMessage):
                await self._server.relay.apply_answer(
                    self._room.id, self.participant_id, parsed.revision, parsed.sdp
                )
            elif isinstance(parsed, MediaStateMessage):
                await self._media_state(parsed)
            elif isinstance(parsed, LeaveMessage):
                await self.close()
        except ProtocolError as error:
            await self._refuse(error)
        except Exception:
            logger.exception("unexpected error handling a client message")
            await self._refuse(
                ProtocolError(
                    ErrorCode.SERVER_ERROR, "Something went wrong on the server.", fatal=True
                )
            )

    async def _refuse(self, error: ProtocolError) -> None:
        await self.send(error.to_message())
        if error.fatal:
            await self.close()

    async def _join(self, message: JoinMessage) -> None:
        if self.participant_id is not None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Already joined.")
        if message.version != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"This server speaks protocol version {PROTOCOL_VERSION}; reload the page.",
                fatal=True,
            )
        server = self._server
        try:
            participant, replaced = server.rooms.join(self._room.id, message.name, message.session)
        except RoomNotFound as error:
            raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, str(error), fatal=True) from None
        except RoomFull as error:
            raise ProtocolError(ErrorCode.ROOM_FULL, str(error), fatal=True) from None
        participant.audio = message.audio
        participant.video = message.video
        if replaced is not None:
            await self._server.evict(self._room.id, replaced.id)
        self.participant_id = participant.id
        server.hub.add(self._room.id, participant.id, self)
        others = [
            participant_info(p) for p in self._room.participants.values() if p is not participant
        ]
        await self.send(
            JoinedMessage(
                participant_id=participant.id,
                room=RoomInfo(
                    id=self._room.id,
                    topic=self._room.topic,
                    url=server.room_url(self._room.id),
                    max_participants=self._room.max_participants,
                ),
                participants=others,
                ice_servers=[IceServerInfo(**s.model_dump()) for s in server.settings.ice_servers],
            )
        )
        await server.hub.broadcast(
            self._room.id,
            ParticipantJoinedMessage(participant=participant_info(participant)),
            exclude=participant.id,
        )
        kinds: list[Kind] = []
        if message.audio:
            kinds.append("audio")
        if message.video:
            kinds.append("video")
        await server.relay.add_participant(self._room.id, participant.id, kinds, self._send_offer)

    async def _send_offer(self, offer: OfferMessage) -> None:
        await self.send(offer)

    async def _media_state(self, message: MediaStateMessage) -> None:
        assert self.participant_id is not None
        participant = self._room.participants.get(self.participant_id)
        if participant is None:
            return
        participant.audio = message.audio
        participant.video = message.video
        await self._server.hub.broadcast(
            self._room.id,
            ParticipantUpdatedMessage(participant=participant_info(participant)),
            exclude=participant.id,
        )

    async def _leave(self) -> None:
        participant_id, self.participant_id = self.participant_id, None
        if participant_id is None:
            return
        server = self._server
        if server.hub.get(self._room.id, participant_id) is self:
            server.hub.remove(self._room.id, participant_id)
        server.rooms.leave(self._room, participant_id)
        await server.hub.broadcast(
            self._room.id, ParticipantLeftMessage(participant_id=participant_id), exclude=None
        )
        await server.relay.remove_participant(self._room.id, participant_id)

    async def room_closed(self, reason: str) -> None:
        await self.send(RoomClosedMessage(reason=reason))  # type: ignore[arg-type]
        await self.close()

    async def evict(self) -> None:
        """The same session joined from another connection: leave, and tell this socket why."""
        await self._leave()
        await self.close(CLOSE_REPLACED, b"joined from another connection")
