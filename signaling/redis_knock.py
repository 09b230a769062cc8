"""A lobby's Admit / Deny answered from any node (``MEETNOW_REDIS_URL``): a chat click lands on
whichever node the platform (or the load balancer) picked, but only the room's node (the holder
of its claim, :mod:`signaling.redis_registry`) has the room's waiting people in memory. The node
that got the click asks the room's node over the bus (:mod:`signaling.redis_bus`) and waits for
its answer.

Messages on the bus: ``knock`` (``req``: a random id, ``from``: the asking node, ``room``,
``participant``, ``admit``: true for Admit) to the claim's holder, which admits or denies and
replies ``knock_answer`` (``req``, ``outcome``). Nobody holds the claim, or this node does: the
click is answered here. No answer within :data:`KNOCK_ANSWER_SECONDS` (the room's node died,
Redis is away): ``not_waiting``, as for someone who gave up.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from .knock import KnockAnswer, answer_knock
from .redis_bus import Envelope, NodeBus
from .tasks import spawn

if TYPE_CHECKING:
    from .redis_rooms import SharedRoomService

__all__ = ["KNOCK_ANSWER_SECONDS", "KnockAnswer", "KnockRelay"]

logger = logging.getLogger(__name__)

KNOCK_ANSWER_SECONDS = 2.0
"""How long a click waits for the room's node: a bus round trip takes milliseconds, and a chat
platform wants its answer soon (Discord's HTTP interactions within 3 s)."""

_OUTCOMES: tuple[KnockAnswer, ...] = ("answered", "not_waiting", "full")


class KnockRelay:
    """Both sides on one node: asking the room's node, and answering other nodes' asks."""

    def __init__(
        self, rooms: SharedRoomService, bus: NodeBus, timeout: float = KNOCK_ANSWER_SECONDS
    ) -> None:
        self._rooms = rooms
        self._bus = bus
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[KnockAnswer]] = {}

    def answer_here(self, room_id: str, participant_id: str, admit: bool) -> KnockAnswer:
        """Admit or deny on this node (where the room's lobby is, if anywhere)."""
        room = self._rooms.get_room(room_id)
        return (
            "not_waiting"
            if room is None
            else answer_knock(self._rooms, room, participant_id, admit)
        )

    async def answer(self, room_id: str, participant_id: str, admit: bool) -> KnockAnswer:
        """Admit or deny on the room's node, wherever it is."""
        try:
            holder = await self._rooms.registry.holder(room_id)
        except RedisError as error:
            logger.warning("lobby answer: claim unknown (Redis): %s", type(error).__name__)
            holder = None
        if holder is None or holder == self._bus.node_id:
            return self.answer_here(room_id, participant_id, admit)
        request = secrets.token_hex(12)
        answered: asyncio.Future[KnockAnswer] = asyncio.get_running_loop().create_future()
        self._pending[request] = answered
        ask = {"op": "knock", "req": request, "from": self._bus.node_id, "room": room_id}
        try:
            if not await self._bus.send(
                holder, {**ask, "participant": participant_id, "admit": admit}
            ):
                return "not_waiting"  # the room's node is gone: its lobby with it
            return await asyncio.wait_for(answered, self._timeout)
        except (RedisError, TimeoutError) as error:
            logger.warning("lobby answer from the room's node missing: %s", type(error).__name__)
            return "not_waiting"
        finally:
            self._pending.pop(request, None)

    def on_message(self, envelope: Envelope) -> None:
        """A ``knock`` or ``knock_answer`` from another node."""
        if envelope.get("op") == "knock":
            spawn(self._reply(envelope), what="lobby answer")
            return
        waiting = self._pending.get(str(envelope.get("req")))
        outcome = envelope.get("outcome")
        if waiting is not None and not waiting.done() and outcome in _OUTCOMES:
            waiting.set_result(outcome)

    async def _reply(self, envelope: Envelope) -> None:
        outcome = self.answer_here(
            str(envelope.get("room")),
            str(envelope.get("participant")),
            envelope.get("admit") is True,
        )
        answer = {"op": "knock_answer", "req": str(envelope.get("req")), "outcome": outcome}
        try:
            await self._bus.send(str(envelope.get("from")), answer)
        except RedisError as error:
            logger.warning("lobby answer not sent back: %s", type(error).__name__)
