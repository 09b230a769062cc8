"""One participant's websocket: the protocol state machine between a client and the room.

Each connection handles its own messages in order; a bad message gets an ``error`` back and never
touches another participant. Broadcasts to the room go through :class:`~signaling.room_hub.RoomHub`
(re-exported here), and a dead peer's send failure is swallowed so one broken socket cannot stop
the others.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, WSMsgType, web

from .chat import relay_chat
from .errors import (
    ParticipantRemoved,
    RoomFull,
    RoomGone,
    RoomLocked,
    RoomNotFound,
    TooManyCandidates,
)
from .forwarding import Kind
from .hands import forget_hand, set_hand
from .host_commands import run_host_command
from .ice_policy import CandidateScreen, policy_from_settings
from .limits import Bucket, TokenBucket
from .network_check import NETWORK_CHECK_MESSAGES, NetworkCheckSession
from .protocol import (
    PROTOCOL_VERSION,
    AnswerMessage,
    ChatMessage,
    ErrorCode,
    JoinedMessage,
    JoinMessage,
    LeaveMessage,
    MediaStateMessage,
    OfferMessage,
    ParticipantJoinedMessage,
    ParticipantLeftMessage,
    ParticipantUpdatedMessage,
    PingMessage,
    PongMessage,
    ProtocolError,
    RaiseHandMessage,
    RoomClosedMessage,
    ScreenShareMessage,
    ServerMessage,
    Source,
    WaitingMessage,
    dump_server_message,
    parse_client_message,
)
from .room_hub import RoomHub, knock_info, participant_info
from .rooms import Participant, Room
from .screen_share import join_screen_sources, run_screen_share
from .tasks import spawn

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = ["ClientConnection", "RoomHub", "knock_info", "participant_info"]

logger = logging.getLogger(__name__)

CLOSE_REPLACED = 4000
"""Close code for a connection whose session joined again elsewhere."""
MESSAGE_BUCKET = Bucket(burst=60, per_second=20)
"""Messages a client may send: bursts of 60, 20 a second sustained (a call needs a few a minute)."""
FLOOD_REFUSALS = 100
"""Messages refused for rate within ``FLOOD_WINDOW_SECONDS`` before the connection is closed
(1008): a slow flood that keeps the bucket just empty is closed too."""
FLOOD_WINDOW_SECONDS = 10.0


class ClientConnection:
    """The server side of one client's websocket: new, then waiting (lobby) or in the call."""

    def __init__(
        self,
        server: MeetnowServer,
        room: Room,
        ws: web.WebSocketResponse,
        client_ip: str = "unknown",
    ) -> None:
        self._server = server
        self._room = room
        self._ws = ws
        self.participant_id: str | None = None
        """Set once ``join`` succeeds (in the call or in the lobby)."""
        self.in_call = False
        """Joined the call (not waiting in the lobby)."""
        self._kinds: list[Kind] = []
        self._screen: list[Source] = []
        self._candidates = CandidateScreen(policy_from_settings(server.settings))
        self._network_check = NetworkCheckSession(server, client_ip, self.send, self.close)
        """The pre-join network check, if this socket is a probe (signaling/network_check.py)."""
        """This participant's ICE candidates: capped, and screened before the relay sees them."""
        self._messages = TokenBucket(MESSAGE_BUCKET, asyncio.get_running_loop().time)
        self._refused = 0
        self._refused_since = 0.0

    async def run(self, join_timeout: float) -> None:
        """Read messages until the socket closes, then leave the room."""
        # An open socket that never joins holds resources for nothing: close it.
        loop = asyncio.get_running_loop()
        idle = loop.call_later(join_timeout, self._close_if_not_joined)
        self._server.hub.track(self._room.id, self)  # so it hears if the room ends before a join
        try:
            async for message in self._ws:
                if not self._allow_message(loop.time()):
                    continue
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
            await self._network_check.close()
            self._server.hub.untrack(self._room.id, self)
            await self._leave()

    def _allow_message(self, now: float) -> bool:
        if self._messages.allow():
            return True
        if now - self._refused_since > FLOOD_WINDOW_SECONDS:
            self._refused_since, self._refused = now, 0
        self._refused += 1
        if self._refused >= FLOOD_REFUSALS:
            spawn(self.close(WSCloseCode.POLICY_VIOLATION, b"message flood"))
        elif self._refused == 1:
            spawn(
                self.send(
                    ProtocolError(
                        ErrorCode.RATE_LIMITED, "Too many messages; slow down."
                    ).to_message()
                )
            )
        return False

    def _close_if_not_joined(self) -> None:
        if self.participant_id is None and not self._ws.closed:
            spawn(self.close())

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
            elif isinstance(parsed, LeaveMessage):
                forget_hand(self._room, self.participant_id)  # a reconnect would keep it
                await self.close()
            elif isinstance(parsed, NETWORK_CHECK_MESSAGES):
                await self._network_check.handle(parsed, joined=self.participant_id is not None)
            elif self.participant_id is None:
                raise ProtocolError(ErrorCode.OUT_OF_ORDER, f"Send 'join' before '{parsed.type}'.")
            elif not self.in_call:
                raise ProtocolError(
                    ErrorCode.OUT_OF_ORDER, "You are waiting for a host to let you in."
                )
            elif isinstance(parsed, AnswerMessage):
                require_dtls_fingerprint(parsed.sdp)
                await self._apply_answer(self.participant_id, parsed)
            elif isinstance(parsed, MediaStateMessage):
                await self._media_state(parsed)
            elif isinstance(parsed, ScreenShareMessage):
                await run_screen_share(self._server, self._room, self.participant_id, parsed)
            elif isinstance(parsed, ChatMessage):
                await relay_chat(self._server, self._room, self.participant_id, parsed)
            elif isinstance(parsed, RaiseHandMessage):
                await set_hand(self._server, self._room, self.participant_id, parsed.raised)
            else:
                await run_host_command(self._server, self._room, self.participant_id, parsed)
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
        self._network_check.refuse_join()
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
            participant, replaced = server.rooms.join(
                self._room.id, message.name, message.session, host_token=message.host_token
            )
        except RoomGone as error:
            raise ProtocolError(ErrorCode.ROOM_ENDED, str(error), fatal=True) from None
        except RoomNotFound as error:
            raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, str(error), fatal=True) from None
        except RoomFull as error:
            raise ProtocolError(ErrorCode.ROOM_FULL, str(error), fatal=True) from None
        except RoomLocked as error:
            raise ProtocolError(ErrorCode.LOCKED, str(error), fatal=True) from None
        except ParticipantRemoved as error:
            raise ProtocolError(ErrorCode.REMOVED, str(error), fatal=True) from None
        participant.audio = message.audio
        participant.video = message.video
        self._kinds = []
        if message.audio:
            self._kinds.append("audio")
        if message.video:
            self._kinds.append("video")
        self._screen = join_screen_sources(server, self._room, participant, message)
        if replaced is not None:
            await server.evict(self._room.id, replaced.id)
        self.participant_id = participant.id
        server.hub.add(self._room.id, participant.id, self)
        if participant.id in self._room.waiting:
            # The hosts hear of the knock through the room event (so do the chat cards).
            await self.send(WaitingMessage(room=server.room_info(self._room)))
        else:
            await self._enter_call(participant)

    async def admitted(self) -> None:
        """A host let this waiting participant in."""
        participant = self._room.participants.get(self.participant_id or "")
        if participant is not None and not self.in_call:
            await self._enter_call(participant)

    async def denied(self) -> None:
        """A host turned this waiting participant away."""
        await self._refuse(
            ProtocolError(ErrorCode.DENIED, "The host did not let you in.", fatal=True)
        )

    async def locked_out(self) -> None:
        """A host locked the room while this participant waited in the lobby."""
        await self._refuse(
            ProtocolError(
                ErrorCode.LOCKED,
                "The host locked this meeting while you were waiting; try again later.",
                fatal=True,
            )
        )

    async def removed(self) -> None:
        """A host removed this participant from the call."""
        await self._refuse(
            ProtocolError(ErrorCode.REMOVED, "The host removed you from this meeting.", fatal=True)
        )

    async def _enter_call(self, participant: Participant) -> None:
        server = self._server
        self.in_call = True
        others = [
            participant_info(p) for p in self._room.participants.values() if p is not participant
        ]
        waiting = [knock_info(p) for p in self._room.waiting.values()] if participant.host else []
        await self.send(
            JoinedMessage(
                participant_id=participant.id,
                host=participant.host,
                room=server.room_info(self._room),
                participants=others,
                waiting=waiting,
                hand_raised_at=participant.hand_raised_at,
                ice_servers=server.ice_servers_for(participant.id),
                ice_transport_policy=server.settings.ice_transport_policy,
            )
        )
        await server.hub.after_joined(self._room.id, self)
        await server.hub.broadcast(
            self._room.id,
            ParticipantJoinedMessage(participant=participant_info(participant)),
            exclude=participant.id,
        )
        await server.relay.add_participant(
            self._room.id, participant.id, self._kinds, self._send_offer, self._screen
        )

    async def _send_offer(self, offer: OfferMessage) -> None:
        await self.send(offer)

    async def _apply_answer(self, participant_id: str, message: AnswerMessage) -> None:
        # Screened before any relay sees it: aioice sends checks to every candidate it is given.
        # Too many candidates refuses the answer, not the session: the offer still waits.
        try:
            sdp = self._candidates.screen_answer(message.sdp)
        except TooManyCandidates as error:
            raise ProtocolError(ErrorCode.TOO_MANY_CANDIDATES, str(error)) from None
        await self._server.relay.apply_answer(self._room.id, participant_id, message.revision, sdp)

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
        if not self.in_call:
            return  # a knocker who gave up: the room event told the hosts
        self.in_call = False
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


def require_dtls_fingerprint(sdp: str) -> None:
    """Refuse an answer without ``a=fingerprint`` (for the session, or in every m-section): its
    media could never be authenticated, and aiortc would accept it only to fail an assertion in
    its DTLS task later, with a traceback in the log and a dead peer connection left behind."""
    session_level = False
    sections: list[bool] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append(False)
        elif line.startswith("a=fingerprint:"):
            if sections:
                sections[-1] = True
            else:
                session_level = True
    if not (session_level or all(sections)):
        raise ProtocolError(
            ErrorCode.NEGOTIATION_FAILED,
            "The answer has no DTLS fingerprint, so the media could not be secured; rejoin.",
            fatal=True,
        )
