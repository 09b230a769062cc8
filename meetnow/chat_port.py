"""The chat port (:class:`bot.port.ChatPort`) implemented over the server's parts.

The only place where chat adapters and the signaling server meet: adapters see the port, the
server never sees an adapter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from bot.port import ChatCommandResult, ChatRoomRequest, KnockOutcome
from signaling.knock import answer_knock
from signaling.limits import ServerLimits
from signaling.metrics import ServerMetrics
from signaling.redis_lease import hold_lease
from signaling.redis_rooms import SharedRoomService
from signaling.rooms import Room, RoomEvents, RoomService
from signaling.server import MeetnowServer

__all__ = ["ServerChatPort"]


@contextlib.asynccontextmanager
async def _held_alone() -> AsyncIterator[None]:
    """One node: nobody else could hold it."""
    yield


class ServerChatPort:
    """:class:`bot.port.ChatPort` over a room service, its limits and its metrics."""

    def __init__(
        self,
        rooms: RoomService,
        limits: ServerLimits,
        metrics: ServerMetrics,
        room_url: Callable[[str], str],
    ) -> None:
        self._rooms = rooms
        self._limits = limits
        self._metrics = metrics
        self._room_url = room_url

    @classmethod
    def of(cls, server: MeetnowServer) -> ServerChatPort:
        """The port over a running server's own room service, limits and metrics."""
        return cls(server.rooms, server.limits, server.metrics, server.room_url)

    def create_room(self, request: ChatRoomRequest) -> Room:
        self._limits.check_chat_creation(request.platform, request.organisation, request.user)
        return self._rooms.create_room(
            request.topic,
            origin=request.platform,
            lobby=request.lobby,
            lifetime_seconds=request.lifetime_seconds,
        )

    def room_url(self, room: Room) -> str:
        return self._room_url(room.id)

    def host_url(self, room: Room) -> str:
        # The token rides in the fragment: browsers never send it to a server or in a Referer.
        return f"{self.room_url(room)}#host={self._rooms.issue_host_token(room)}"

    def get_room(self, room_id: str) -> Room | None:
        return self._rooms.get_room(room_id)

    def open_rooms(self) -> list[Room]:
        return self._rooms.rooms()

    def answer_knock(self, room: Room, participant_id: str, admit: bool) -> KnockOutcome:
        return answer_knock(self._rooms, room, participant_id, admit)

    async def answer_knock_anywhere(
        self, room_id: str, participant_id: str, admit: bool
    ) -> KnockOutcome:
        rooms = self._rooms
        if isinstance(rooms, SharedRoomService) and rooms.knocks is not None:
            return await rooms.knocks.answer(room_id, participant_id, admit)
        room = rooms.get_room(room_id)
        if room is None:
            return "not_waiting"
        return self.answer_knock(room, participant_id, admit)

    def add_listener(self, listener: RoomEvents) -> None:
        self._rooms.add_listener(listener)

    def now(self) -> float:
        return self._rooms.now()

    def count_command(self, platform: str, result: ChatCommandResult) -> None:
        self._metrics.count_chat_command(platform, result)

    def rooms_outlive_restart(self) -> bool:
        return self._rooms.durable

    def remember_card(self, room: Room, platform: str, reference: str) -> None:
        self._rooms.remember(room.id, f"card:{platform}", reference)

    def single_holder(self, name: str) -> AbstractAsyncContextManager[None]:
        rooms = self._rooms
        if not isinstance(rooms, SharedRoomService):
            return _held_alone()
        key = f"{rooms.shared.prefix}lease:{name}"
        return hold_lease(rooms.shared.client, key, rooms.registry.node_id)

    def cards_shared(self) -> bool:
        return isinstance(self._rooms, SharedRoomService)

    async def remembered_cards(self, platform: str) -> dict[str, str]:
        return await self._rooms.remembered(f"card:{platform}")
