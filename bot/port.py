"""The chat port: the one thing a chat adapter receives from the rest of meetnow.

An adapter (Slack, Discord, the next platform) turns a chat command into a room and keeps a card
up to date from the room's events. Everything it may ask of meetnow for that is on
:class:`ChatPort`, and nothing more: no web server, no relay, no settings of other parts. The
composition root (``meetnow.wiring``) implements it over the running server and hands it to each
platform's ``install_*`` function with that platform's own settings.

Types the port speaks in come from the room core (:mod:`signaling.rooms`, :mod:`signaling.errors`),
which adapters may import; the server, the connections and the relay stay out of reach.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from signaling.rooms import Room, RoomEvents

__all__ = ["ChatCommandResult", "ChatPort", "ChatRoomRequest", "KnockOutcome"]

ChatCommandResult = Literal["created", "help", "invalid", "rate_limited", "server_full", "off"]
"""What became of a chat command, for the metrics: a room (``created``), the usage text
(``help``), a mistake explained (``invalid``), refused by a rate limit (``rate_limited``) or by the
server's room cap (``server_full``), or answered by an adapter whose token its platform refused
(``off``)."""

KnockOutcome = Literal["answered", "not_waiting", "full"]
"""What became of a host's Admit / Deny: done, nobody of that id waits any more (answered in the
call, by another click, or given up), or the room is full (an admit only)."""


@dataclass(frozen=True)
class ChatRoomRequest:
    """A room asked for by one chat user, as the adapter understood the command."""

    platform: str
    """The adapter's name (``slack``, ``discord``): the room's ``origin`` and the metrics label."""
    organisation: str
    """The user's workspace, guild or other tenant, as the platform names it (rate-limited too)."""
    user: str
    """The chat user's id on that platform (rate-limited per user)."""
    topic: str | None = None
    """The room's topic, as typed (the room service cleans and cuts it)."""
    lobby: bool = False
    """Newcomers wait in a lobby for a host."""
    lifetime_seconds: int | None = None
    """``--for``: the link admits nobody new after this long. None: the server's default."""


class ChatPort(Protocol):
    """What a chat adapter may ask of meetnow. Every call returns at once (no I/O), except the
    ``async`` ones."""

    def create_room(self, request: ChatRoomRequest) -> Room:
        """Open a room for a chat user, under the chat limits.

        Raises :class:`signaling.errors.RateLimited` when this user or their organisation made
        too many rooms lately, and :class:`signaling.errors.TooManyRooms` at the server's room
        cap; both carry a message fit to show the user."""
        ...

    def room_url(self, room: Room) -> str:
        """The room's shareable link (what the card's Join button opens)."""
        ...

    def host_url(self, room: Room) -> str:
        """A fresh link that makes its holder a host (a new host token in the fragment): for the
        command's author alone, never for the channel."""
        ...

    def get_room(self, room_id: str) -> Room | None:
        """The open room with this id; None once it ended, expired or never existed."""
        ...

    def open_rooms(self) -> list[Room]:
        """Every open room (an adapter ends its cards with them when the server stops)."""
        ...

    def answer_knock(self, room: Room, participant_id: str, admit: bool) -> KnockOutcome:
        """Admit or deny someone waiting in ``room``'s lobby, as its host. The adapter checks
        first that the click came from the host: the port does not know chat users."""
        ...

    async def answer_knock_anywhere(
        self, room_id: str, participant_id: str, admit: bool
    ) -> KnockOutcome:
        """:meth:`answer_knock` on the room's node, wherever the click landed: with
        :meth:`cards_shared` only the room's node has its lobby in memory, so another node asks
        it over Redis (no answer within 2 s, or nobody of that id waiting: ``not_waiting``). On
        one node it is :meth:`answer_knock` (``not_waiting`` for a room that is gone)."""
        ...

    def add_listener(self, listener: RoomEvents) -> None:
        """Be told of every room's joins, leaves, knocks and end (filter by ``room.origin``)."""
        ...

    def now(self) -> float:
        """The room service's clock (seconds), which tests can move."""
        ...

    def count_command(self, platform: str, result: ChatCommandResult) -> None:
        """Count one answered chat command for the metrics, by platform and result."""
        ...

    def rooms_outlive_restart(self) -> bool:
        """Whether rooms survive a restart of the server (a durable store): then a stopping
        server ends no card, and :meth:`remember_card` values come back at start-up."""
        ...

    def remember_card(self, room: Room, platform: str, reference: str) -> None:
        """Keep where ``room``'s card is (``reference``: the adapter's own small JSON: channel,
        message id; never a token) until the room closes, so the card can still be updated
        after a restart. Written in the background; a no-op without a durable store."""
        ...

    def single_holder(self, name: str) -> AbstractAsyncContextManager[None]:
        """``async with port.single_holder("discord-gateway"):`` enters once this node is the
        only one holding ``name`` (at once on a single node; on Redis a lease renewed while held
        and taken over by a waiting node within 6 s when its holder dies), for a platform
        connection that must be single."""
        ...

    def cards_shared(self) -> bool:
        """Whether several nodes share the rooms (``MEETNOW_REDIS_URL``). A room's events then
        reach the adapters of one node only, the one where they happen (the room's node: joins,
        leaves and knocks run where its call runs; the end where it is closed), which may not
        be the node whose adapter posted the card (a chat command lands on any node): the
        adapter there finds the card with :meth:`remembered_cards` and updates it, and no
        other node does."""
        ...

    async def remembered_cards(self, platform: str) -> dict[str, str]:
        """The card references :meth:`remember_card` kept for ``platform``, by open room id
        (empty without a durable store). Ask at start-up."""
        ...
